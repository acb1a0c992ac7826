"""SubscribeLog is bounded: a subscriber costs one page of memory at most, idle subscribers
share one notifier instead of each polling, and their number is capped.

Before: each subscriber read 500-event pages and polled a worker thread every 10 ms while
caught up; 200 subscribers that never read took ~156 MiB of the optimizer's memory here
(500 took 8.4 GB in the issue), and idle ones took ~80% of a core.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dspyops.auth import hash_token
from dspyops.client import OptimizerClient
from dspyops.eventlog import SQLiteEventStore, StoredEvent, open_store
from dspyops.events import new_event
from dspyops.launch import ServiceProcess
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.proto import optimizer_pb2_grpc
from dspyops.rpc import Security
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, wait_until

EVENTS = 20_000
SUBSCRIBERS = 200


def filler_log(path: Path, events: int = EVENTS, size: int = 1024) -> None:
    """`events` JobProgress events of about `size` bytes each (the fold ignores them)."""
    store = open_store(str(path))
    try:
        batch = [new_event(pb.JobProgress(step=i, message="x" * size)) for i in range(events)]
        for start_at in range(0, events, 1000):
            store.append("job-filler", batch[start_at : start_at + 1000], None)
    finally:
        store.close()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_200_subscribers_that_never_read_cost_the_server_little_memory(tmp_path: Path) -> None:
    filler_log(tmp_path / "log.db")
    args = ["optimizer", "--log", str(tmp_path / "log.db"), "--data-dir", str(tmp_path / "data")]
    caps = ["--max-subscribers", "250", "--max-subscribers-per-actor", "250"]
    server = ServiceProcess("optimizer", [*args, *caps], tmp_path, dict(os.environ))
    channels: list[grpc.Channel] = []
    try:
        with OptimizerClient(server.address) as client:
            # warm up: one subscriber reads the whole log, so the code paths are loaded
            warm = client.subscribe_log()
            for event in warm:
                if event.position == EVENTS:
                    break
            warm.cancel()
            time.sleep(1.0)
            before = rss_mib(server.pid)
            calls = []
            for _ in range(SUBSCRIBERS):
                # a connection each (a shared one would bound them all by one HTTP/2 window);
                # no BDP probing, so this test process does not buffer megabytes per stream
                channel = grpc.insecure_channel(
                    server.address,
                    options=[("grpc.use_local_subchannel_pool", 1), ("grpc.http2.bdp_probe", 0)],
                )
                channels.append(channel)
                stub = optimizer_pb2_grpc.OptimizerStub(channel)
                calls.append(stub.SubscribeLog(opb.SubscribeLogRequest()))  # never read
            latencies = []
            peak = before
            for _ in range(40):  # ~6 s while the subscribers sit on their streams
                started = time.perf_counter()
                client.list_programs()
                latencies.append((time.perf_counter() - started) * 1000)
                peak = max(peak, rss_mib(server.pid))
                time.sleep(0.15)
            assert not any(call.done() for call in calls), [c.code() for c in calls if c.done()][:3]
            grown = peak - before
            print(
                f"\n{SUBSCRIBERS} idle subscribers on {EVENTS} x 1 KiB events: server RSS "
                f"{before:.0f} -> {peak:.0f} MiB (+{grown:.0f}); ListPrograms p50 "
                f"{statistics.median(latencies):.1f} ms"
            )
            assert grown < 100, f"the server grew by {grown:.0f} MiB for {SUBSCRIBERS} subscribers"
            for call in calls:
                call.cancel()
    finally:
        for channel in channels:
            channel.close()
        server.stop()


class CountingStore(SQLiteEventStore):
    """The real SQLite store, counting its reads (how often subscribers look at the log)."""

    reads = 0

    def read(self, after_position: int = 0, limit: int = 1000, stream_prefix: str | None = None) -> list:
        type(self).reads += 1
        return super().read(after_position, limit, stream_prefix)


def test_idle_subscribers_share_one_notifier_and_see_other_processes_appends(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    filler_log(path, events=10, size=10)
    store = CountingStore(path)
    other = open_store(str(path))  # another connection: its appends do not signal `store`

    async def main() -> tuple[int, list[list[int]]]:
        received: list[list[int]] = [[] for _ in range(50)]

        async def subscriber(i: int) -> None:
            async for event in store.asubscribe(0):
                received[i].append(event.position)

        tasks = [asyncio.create_task(subscriber(i)) for i in range(50)]
        async with asyncio.timeout(30):
            while not all(len(r) == 10 for r in received):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # everyone is waiting at the head now
        CountingStore.reads = 0
        await asyncio.sleep(1.0)  # idle
        idle_reads = CountingStore.reads
        await asyncio.to_thread(other.append, "job-filler", [new_event(pb.JobProgress(step=99))], None)
        async with asyncio.timeout(30):
            while not all(len(r) == 11 for r in received):
                await asyncio.sleep(0.01)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return idle_reads, received

    try:
        idle_reads, received = asyncio.run(main())
    finally:
        other.close()
        store.close()
    # polling subscribers read ~100 times a second each (5,000 reads here); waiting ones none
    assert idle_reads < 50, f"{idle_reads} reads in 1 s by 50 idle subscribers"
    assert all(r == list(range(1, 12)) for r in received)


def test_a_subscriber_holds_a_page_bounded_by_bytes_but_always_progresses(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "log.db"))
    sizes = [10, 300_000, 10, 10, 2_000_000, 10]
    store.append(
        "job-x", [new_event(pb.JobProgress(step=i, message="y" * n)) for i, n in enumerate(sizes)], 0
    )
    pages: list[list[int]] = []
    start_at = 0
    while start_at < len(sizes):
        page = store.read_page(start_at, max_events=64, max_bytes=256 * 1024)
        pages.append([e.position for e in page])
        start_at = page[-1].position
    store.close()
    # the big events come alone (never skipped), the small ones together
    assert pages == [[1], [2], [3, 4], [5], [6]]

    async def collect(store: SQLiteEventStore) -> list[StoredEvent]:
        got = []
        async for event in store.asubscribe(0, page_bytes=1024):
            got.append(event)
            if len(got) == len(sizes):
                break
        return got

    store = SQLiteEventStore(tmp_path / "log.db")
    try:
        assert [e.position for e in asyncio.run(collect(store))] == [1, 2, 3, 4, 5, 6]
    finally:
        store.close()


TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789"}


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[str]:
    filler_log(tmp_path / "log.db", events=5, size=10)
    (tmp_path / "tokens").write_text(
        "".join(f"{hash_token(token)} reader {name}\n" for name, token in TOKENS.items())
    )
    config = OptimizerConfig(
        log=str(tmp_path / "log.db"),
        data_dir=tmp_path / "data",
        max_subscribers=3,
        max_subscribers_per_actor=2,
        security=Security(tokens_file=str(tmp_path / "tokens")),
    )
    server = ServerThread(lambda: start(config))
    yield server.address
    server.stop()


def test_subscribers_are_capped_server_wide_and_per_caller(capped: str) -> None:
    alice = OptimizerClient(capped, token=TOKENS["alice"])
    bob = OptimizerClient(capped, token=TOKENS["bob"])
    try:

        def subscribe(client: OptimizerClient) -> grpc.Future:
            stream = client.subscribe_log()
            assert next(stream).position == 1  # admitted: it streams
            return stream

        a1, a2 = subscribe(alice), subscribe(alice)
        with pytest.raises(grpc.RpcError) as refused:
            next(alice.subscribe_log())
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "per caller" in refused.value.details()
        assert "--max-subscribers-per-actor" in refused.value.details()
        b1 = subscribe(bob)  # another caller still gets in ...
        with pytest.raises(grpc.RpcError) as refused:
            next(bob.subscribe_log())  # ... up to the server-wide cap
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 3 log subscriptions at once on this server" in refused.value.details()
        a1.cancel()  # a slot comes back when its stream ends

        def admitted() -> bool:
            try:
                stream = alice.subscribe_log()
                next(stream)
            except grpc.RpcError:
                return False
            stream.cancel()
            return True

        assert wait_until(admitted, timeout=10)
        for stream in (a2, b1):
            stream.cancel()
    finally:
        alice.close()
        bob.close()
