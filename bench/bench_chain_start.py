"""Chain verification at start: how long the check takes on a large log, walking the whole
chain versus only the links after the newest snapshot, and an optimizer's start on it.

The log is bench_replay's realistic mix (1M events; 50k with --quick), written through the
store, so every link is chain v2. Measured: `verify()` over the whole log (what `dspyops log
verify` does), `verify(after_position=snapshot)` with a snapshot 1,000 events below the head
(what each service does at start), the same with a chain key (HMAC-SHA256 links), and an
in-process optimizer's start until it serves (open, writer lease, check, fold of the tail).
Numbers only: nothing here passes or fails on time.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench import common
from bench.bench_replay import generate
from dspyops.eventlog import NewEvent, open_store
from dspyops.fold import fold
from dspyops.snapshots.sqlite import SQLiteSnapshotStore, snapshot_path
from dspyops.state import EMPTY
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer

TAIL = 1_000
KEY = b"bench-chain-key-0123456789abcdef"


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def optimizer_start_s(log: Path, data: Path, key_file: str = "") -> float:
    async def run() -> float:
        t0 = time.perf_counter()
        running = await start_optimizer(OptimizerConfig(log=str(log), data_dir=data, chain_key_file=key_file))
        elapsed = time.perf_counter() - t0
        await running.stop(0.5)
        return elapsed

    return asyncio.run(run())


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("chain_start", args.quick)
    total = 50_000 if args.quick else 1_000_000
    load_start = common.loadavg()
    results: dict[str, float] = {}
    with common.tmpdir("chain-start") as tmp:
        log = Path(tmp) / "log.db"
        results["generate_s"] = generate(log, total)
        store = open_store(str(log))
        head = store.head()
        snapshot_at = head - TAIL
        state = EMPTY
        while state.position < snapshot_at:
            page = store.read(state.position, min(10_000, snapshot_at - state.position))
            state = fold(page, state)
        snapshots = SQLiteSnapshotStore(snapshot_path(str(log)))
        snapshots.save(state, page[-1].hash)  # what the optimizer's Ledger writes every 10k events
        snapshots.close()
        results["events"] = head
        results["full_verify_s"], full = timed(store.verify)
        results["tail_verify_s"], tail = timed(lambda: store.verify(after_position=snapshot_at))
        assert full.ok and tail.ok and tail.checked == head - snapshot_at  # type: ignore[attr-defined]
        store.close()
        results["full_verify_events_per_s"] = head / results["full_verify_s"]
        results["optimizer_start_with_snapshot_s"] = optimizer_start_s(log, Path(tmp) / "data")

        keyed = Path(tmp) / "keyed.db"
        key_store = open_store(str(keyed), chain_key=KEY)
        for i in range(total // 1000):
            key_store.append("bench", [NewEvent("dspyops.v1.Tail", b"x" * 60) for _ in range(1000)], i * 1000)
        results["keyed_full_verify_s"], verified = timed(key_store.verify)
        assert verified.ok and verified.keyed_links == total  # type: ignore[attr-defined]
        results["keyed_full_verify_events_per_s"] = total / results["keyed_full_verify_s"]
        key_store.close()

    print(f"  log of {results['events']:,} events (chain v2), snapshot {TAIL:,} events below the head")
    rate = results["full_verify_events_per_s"]
    print(f"  full verify      {results['full_verify_s']:7.2f} s  ({rate:,.0f} events/s)")
    print(f"  verify at start  {results['tail_verify_s'] * 1000:7.1f} ms ({TAIL:,} links after the snapshot)")
    start_s = results["optimizer_start_with_snapshot_s"]
    print(f"  optimizer start  {start_s:7.2f} s  (open, lease, check, fold of the tail)")
    print(
        f"  keyed full verify {results['keyed_full_verify_s']:6.2f} s  "
        f"({results['keyed_full_verify_events_per_s']:,.0f} events/s, {total:,} HMAC-SHA256 links)"
    )
    common.save("chain_start", {"quick": args.quick, "loadavg_start": load_start, "results": results})


if __name__ == "__main__":
    main()
