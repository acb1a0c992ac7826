"""The gateway's log sources deliver pages: gapless and in order, catch-up in full pages,
live appends from another connection (another process's, as far as SQLite can tell) seen
through the data-version probe; the replica folds and wakes its waiters once per page; a
remote source reconnects from where it was after the optimizer restarts."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

from dspyops.eventlog import open_store
from dspyops.eventlog.wakeup import DataVersionProbe
from dspyops.events import new_event
from dspyops.fold import fold, state_hash
from dspyops.proto import events_pb2 as pb
from gateway_svc.file_source import FileLogSource, FileWatch
from gateway_svc.remote_source import RemoteLogSource
from gateway_svc.replica import Replica
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread


def _routes(n: int, tag: str = "") -> list:
    return [
        new_event(
            pb.RoutesSet(deployment="web", routes=[pb.Route(version="1.0.0", weight=1.0)], reason=f"{tag}{i}")
        )
        for i in range(n)
    ]


def _log(path: Path, events: int) -> str:
    log = str(path / "log.db")
    store = open_store(log)
    store.append("deployment-web", [new_event(pb.DeploymentCreated(deployment="web", program="p"))], 0)
    if events > 1:
        store.append("deployment-web", _routes(events - 1), None)
    store.close()
    return log


def test_the_probe_changes_only_when_another_connection_commits(tmp_path: Path) -> None:
    log = _log(tmp_path, 3)
    probe = DataVersionProbe(log)
    try:
        before = probe.version()
        assert before is not None and probe.version() == before
        writer = open_store(log)
        writer.append("deployment-web", _routes(1, "x"), None)
        after = probe.version()
        assert after is not None and after != before
        assert probe.version() == after
        writer.close()
    finally:
        probe.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux only")
def test_the_file_watch_fires_on_writes_to_the_log_only(tmp_path: Path) -> None:
    log = _log(tmp_path, 2)

    async def scenario() -> tuple[bool, bool, bool]:
        writer = open_store(log)  # opening touches the log's files: before the watch starts
        watch = FileWatch.open(log, asyncio.get_running_loop())
        assert watch is not None
        try:
            quiet = await watch.wait(0.05)
            (tmp_path / "unrelated.txt").write_text("not the log")
            other = await watch.wait(0.05)
            await asyncio.to_thread(writer.append, "deployment-web", _routes(1, "w"), None)
            written = await watch.wait(10)
        finally:
            writer.close()
            watch.close()
        return quiet, other, written

    assert asyncio.run(scenario()) == (False, False, True)


@pytest.mark.parametrize("watch", [True, False], ids=["inotify", "probe-timer"])
def test_file_source_pages_catch_up_then_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watch: bool
) -> None:
    if not watch:  # where inotify is unavailable the tail probes on a timer
        monkeypatch.setattr(FileWatch, "open", classmethod(lambda cls, path, loop: None))
    log = _log(tmp_path, 25)

    async def scenario() -> list[list[int]]:
        source = FileLogSource(open_store(log), page_size=10)
        writer = open_store(log)  # its own connections: seen only through the probe
        seen: list[list[int]] = []
        try:
            async with asyncio.timeout(20):
                async for page in source.pages(0):
                    seen.append([e.position for e in page])
                    if seen[-1][-1] == 25:
                        await asyncio.to_thread(writer.append, "deployment-web", _routes(3, "live"), None)
                    if seen[-1][-1] == 28:
                        break
        finally:
            writer.close()
            await source.close()
        return seen

    pages = asyncio.run(scenario())
    assert [len(p) for p in pages[:3]] == [10, 10, 5]  # catch-up in full pages
    flat = [position for page in pages for position in page]
    assert flat == list(range(1, 29))  # no gap, no duplicate


def test_a_closed_file_source_ends(tmp_path: Path) -> None:
    log = _log(tmp_path, 2)

    async def scenario() -> int:
        source = FileLogSource(open_store(log))
        count = 0

        async def consume() -> None:
            nonlocal count
            async for page in source.pages(0):
                count += len(page)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        await source.close()
        await asyncio.wait_for(task, 5)
        return count

    assert asyncio.run(scenario()) == 2


def test_replica_folds_pages_and_wakes_waiters(tmp_path: Path) -> None:
    log = _log(tmp_path, 5_001)  # above the in-thread fold threshold

    async def scenario() -> tuple[int, str, bool]:
        replica = Replica(FileLogSource(open_store(log), page_size=4_000))
        await replica.start(head=5_001)
        writer = open_store(log)
        try:
            await asyncio.to_thread(writer.append, "deployment-web", _routes(2, "more"), None)
            reached = await replica.wait_for(5_003, timeout=10)
            return replica.folded, state_hash(replica.state), reached
        finally:
            writer.close()
            await replica.stop()

    folded, digest, reached = asyncio.run(scenario())
    store = open_store(log)
    expected = state_hash(fold(store.read(0, 10_000)))
    store.close()
    assert reached and folded == 5_003
    assert digest == expected


def test_remote_source_reconnects_where_it_was_after_the_optimizer_restarts(tmp_path: Path) -> None:
    log = _log(tmp_path, 4)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = OptimizerConfig(log=log, data_dir=tmp_path / "data", port=port)
    optimizer = ServerThread(lambda: start_optimizer(config))

    async def scenario() -> list[int]:
        nonlocal optimizer
        source = RemoteLogSource(f"127.0.0.1:{port}", retry_delay=0.05)
        positions: list[int] = []
        try:
            async with asyncio.timeout(60):
                async for page in source.pages(0):
                    positions += [e.position for e in page]
                    if positions[-1] == 4:  # caught up: restart the optimizer with more events
                        await asyncio.to_thread(optimizer.stop)
                        writer = open_store(log)
                        await asyncio.to_thread(writer.append, "deployment-web", _routes(3, "down"), None)
                        writer.close()
                        optimizer = await asyncio.to_thread(ServerThread, lambda: start_optimizer(config))
                    if positions[-1] >= 7:
                        break
        finally:
            await source.close()
        return positions

    try:
        assert asyncio.run(scenario()) == list(range(1, 8))
    finally:
        optimizer.stop()
