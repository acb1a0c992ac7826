"""Benchmark 4: replay. The fold's rate (events/s) over a 1M-event SQLite log with a realistic
mix, and the time until a fresh gateway process serves its first Predict from that log.

Baselines in the same run: reading the same events from the store without folding (the
floor of any replay), and a gateway process started on a 3-event log (process start and
imports, no replay). Goals (issue 17): read+fold >= 600k events/s; first Predict <= 2 s
replaying the whole 1M-event log, <= 1 s from a snapshot (the issue asks it of a 10M-event
log; generating one takes longer than `make bench` has, so this run checks it at 1M).

The mix: 20 programs and 50 deployments; per 1,000 events about 5 VersionRegistered
(each carrying a ~1.5 KB artifact), 300 VersionStatusChanged, 300 AliasSet and 395
RoutesSet. The log is generated through the store, not through an optimizer, so it has no
snapshot at first: the gateway is timed once replaying the whole log, then again after a
snapshot at the head is taken (`take_snapshot`, what the optimizer's Ledger writes every
10k events), when it loads the snapshot and folds nothing but the tail.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import grpc

from bench import common
from dspyops.client import GatewayClient
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.fold import fold
from dspyops.proto import events_pb2 as pb
from dspyops.snapshots import take_snapshot
from dspyops.snapshots.sqlite import SQLiteSnapshotStore, snapshot_path
from dspyops.state import EMPTY

PROGRAMS = [f"prog{i}" for i in range(20)]
DEPLOYMENTS = [f"dep{i}" for i in range(50)]
STATUSES = [pb.DEVELOPMENT, pb.STAGING, pb.PRODUCTION, pb.DEPRECATED]


def generate(path: Path, total: int, seed: int = 7) -> float:
    """Append `total` events to a fresh log at `path`; returns seconds taken."""
    rng = random.Random(seed)
    template = common.version_event("1.0.0")
    store = open_store(str(path))
    versions: dict[str, list[str]] = {p: [] for p in PROGRAMS}
    stream_versions: dict[str, int] = {}
    written = 0
    t0 = time.perf_counter()

    def append(stream: str, payloads: list) -> None:
        nonlocal written
        expected = stream_versions.get(stream, 0)
        store.append(stream, [new_event(m) for m in payloads], expected)
        stream_versions[stream] = expected + len(payloads)
        written += len(payloads)

    def register(program: str) -> pb.VersionRegistered:
        v = f"1.{len(versions[program])}.0"
        versions[program].append(v)
        msg = pb.VersionRegistered()
        msg.CopyFrom(template)
        msg.program, msg.version = program, v
        return msg

    try:
        for program in PROGRAMS:  # every program starts with two versions
            append(f"program-{program}", [register(program), register(program)])
        for i, dep in enumerate(DEPLOYMENTS):
            append(f"deployment-{dep}", [pb.DeploymentCreated(deployment=dep, program=PROGRAMS[i % 20])])
        while written < total:
            batch = min(100, total - written)
            if rng.random() < 0.4:
                dep = rng.choice(DEPLOYMENTS)
                program = PROGRAMS[DEPLOYMENTS.index(dep) % 20]
                payloads = []
                for _ in range(batch):
                    a, b = rng.sample(versions[program], 2)
                    w = rng.choice((0.5, 0.9, 0.99))
                    payloads.append(
                        pb.RoutesSet(
                            deployment=dep,
                            routes=[pb.Route(version=a, weight=w), pb.Route(version=b, weight=1 - w)],
                            reason="canary step",
                        )
                    )
                append(f"deployment-{dep}", payloads)
            else:
                program = rng.choice(PROGRAMS)
                payloads = []
                for _ in range(batch):
                    r = rng.random()
                    if r < 0.0083:
                        payloads.append(register(program))
                    elif r < 0.5:
                        payloads.append(
                            pb.VersionStatusChanged(
                                program=program,
                                version=rng.choice(versions[program]),
                                status=rng.choice(STATUSES),
                                reason="bench",
                            )
                        )
                    else:
                        payloads.append(
                            pb.AliasSet(
                                program=program,
                                alias=rng.choice(("champion", "challenger", "stable")),
                                version=rng.choice(versions[program]),
                            )
                        )
                append(f"program-{program}", payloads)
    finally:
        store.close()
    return time.perf_counter() - t0


def read_and_fold(path: Path, page: int = 10_000) -> dict[str, float]:
    store = open_store(str(path))
    try:
        read_s = fold_s = 0.0
        state, last, n = EMPTY, 0, 0
        while True:
            t0 = time.perf_counter()
            events = store.read(last, page)
            t1 = time.perf_counter()
            if not events:
                break
            state = fold(events, state)
            t2 = time.perf_counter()
            read_s += t1 - t0
            fold_s += t2 - t1
            last = events[-1].position
            n += len(events)
        return {
            "events": n,
            "read_s": read_s,
            "fold_s": fold_s,
            "read_per_s": n / read_s,
            "fold_per_s": n / fold_s,
            "read_and_fold_per_s": n / (read_s + fold_s),
            "versions": sum(len(p.versions) for p in state.programs.values()),
        }
    finally:
        store.close()


def first_predict(
    log: Path | str, workdir: Path, deployment: str, timeout: float = 900.0, extra: tuple[str, ...] = ()
) -> dict[str, float]:
    """Seconds from spawning `dspyops serve gateway` (with `extra` flags) to the first Predict answered."""
    t0 = time.perf_counter()
    gateway = common.ServeProcess("gateway", log, workdir, *extra, timeout=timeout)
    listening = time.perf_counter() - t0
    try:
        with GatewayClient(gateway.address, timeout=5) as client:
            while True:
                try:
                    client.predict(deployment, {"text": "my invoice is wrong"}, routing_key="u1")
                    break
                except grpc.RpcError as exc:
                    if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND):
                        raise
                    if time.perf_counter() - t0 > timeout:
                        raise
                    time.sleep(0.01)
        return {
            "port_file_s": listening,
            "first_predict_s": time.perf_counter() - t0,
            "rss_kib": gateway.rss_kib(),
        }
    finally:
        gateway.stop()


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("replay", args.quick)
    total = 20_000 if args.quick else 1_000_000
    load_start = common.loadavg()
    with common.tmpdir("replay") as tmp:
        work = Path(tmp)
        big = work / "big.db"
        gen_s = generate(big, total)
        size_mb = big.stat().st_size / 1e6
        print(
            f"  generated {total:,} events in {gen_s:.1f} s ({total / gen_s:,.0f} events/s), {size_mb:.0f} MB"
        )
        rates = read_and_fold(big)
        print(
            f"  read {rates['read_per_s']:,.0f} events/s   fold {rates['fold_per_s']:,.0f} events/s   "
            f"read+fold {rates['read_and_fold_per_s']:,.0f} events/s, "
            f"{rates['read_and_fold_per_s'] / 600_000:.2f} of 600k/s  "
            f"{common.verdict(rates['read_and_fold_per_s'] / 600_000, 1.0, True)}"
        )
        # the gateway serves deployment dep0 from the big log: give it a version it can load
        small = work / "small.db"
        common.build_log(small)
        cold = first_predict(small, work, common.DEPLOYMENT)
        full = first_predict(big, work, "dep0")  # no snapshot yet: replays every event
        t0 = time.perf_counter()
        store, snapshots = open_store(str(big)), SQLiteSnapshotStore(snapshot_path(str(big)))
        try:
            take_snapshot(store, snapshots)
        finally:
            snapshots.close()
            store.close()
        snapshot_s = time.perf_counter() - t0
        hot = first_predict(big, work, "dep0")  # loads the snapshot, folds only the tail
        print(
            f"  first Predict: 3-event log {cold['first_predict_s']:.2f} s; {total:,}-event log "
            f"{full['first_predict_s']:.2f} s replaying it all "
            f"{common.verdict(full['first_predict_s'], 2.0, False)}, "
            f"{hot['first_predict_s']:.2f} s from a snapshot at the head "
            f"{common.verdict(hot['first_predict_s'], 1.0, False)}"
            f"; taking the snapshot: {snapshot_s:.1f} s"
        )
    common.save(
        "replay",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "events": total,
            "generate_s": gen_s,
            "db_mb": size_mb,
            "rates": rates,
            "first_predict_small_log": cold,
            "first_predict_big_log_no_snapshot": full,
            "snapshot_s": snapshot_s,
            "first_predict_big_log": hot,
            "goals": {
                "read_and_fold_per_s": 600_000,
                "first_predict_no_snapshot_s": 2.0,
                "first_predict_s": 1.0,
            },
        },
    )


if __name__ == "__main__":
    main()
