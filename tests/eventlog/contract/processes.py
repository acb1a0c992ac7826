"""Many processes on one log, and kill -9: for backends whose log other processes share
(SQLite's file), not for the in-memory one, whose log lives in one process."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from tests.eventlog.contract.base import SPAWN, ContractBase, StoreFactory, WriterPool, ev
from tests.eventlog.workers import ack_forever, check_log, process_writer, write_batches


class ProcessContract(ContractBase):
    @pytest.fixture
    def writer_pool(self) -> Iterator[WriterPool]:
        """The foreign writer of the subscription tests runs in another process."""
        with SPAWN.Manager() as manager, ProcessPoolExecutor(1, mp_context=SPAWN) as pool:
            yield pool, manager.Barrier

    def test_processes_appending_concurrently(self, store_url: str, make_store: StoreFactory) -> None:
        store = make_store()  # create the storage before the children race to open it
        procs, threads_n, batches, size = 2, 2, 40, 2
        streams = ["program-a", "program-b"]
        conflicts: list[int] = []
        with SPAWN.Manager() as manager, ProcessPoolExecutor(procs, mp_context=SPAWN) as pool:
            gate = manager.Barrier(procs + threads_n)
            futures = [
                pool.submit(process_writer, store_url, f"p{i}", streams, batches, size, gate)
                for i in range(procs)
            ]
            # Threads of this process join the race while the children run.
            threads = [
                threading.Thread(
                    target=lambda i=i: conflicts.append(
                        write_batches(store, f"t{i}", streams, batches, size, gate)
                    )
                )
                for i in range(threads_n)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            # result() re-raises anything but WrongExpectedVersion from a child.
            conflicts += [f.result(timeout=60) for f in futures]
        assert len(conflicts) == procs + threads_n
        writers = [f"p{i}" for i in range(procs)] + [f"t{i}" for i in range(threads_n)]
        check_log(store.read(limit=10_000), {(w, b): size for w in writers for b in range(batches)})
        assert store.verify().ok

    def test_acknowledged_appends_survive_kill_9(self, store_url: str, make_store: StoreFactory) -> None:
        make_store()
        parent_end, child_end = SPAWN.Pipe(duplex=False)
        child = SPAWN.Process(target=ack_forever, args=(store_url, child_end), daemon=True)
        child.start()
        acked: list[int] = []
        try:
            while len(acked) < 30:
                assert parent_end.poll(30), "the writer process stopped acknowledging"
                acked.append(parent_end.recv())
        finally:
            assert child.pid is not None
            os.kill(child.pid, signal.SIGKILL)
            child.join(10)
        assert child.exitcode == -signal.SIGKILL
        reopened = make_store()
        events = reopened.read(limit=10_000)
        assert [e.position for e in events] == list(range(1, len(events) + 1))
        assert set(acked) <= {e.position for e in events}
        assert reopened.verify().ok
        # The store is writable again: the killed writer left no lock behind.
        assert reopened.append("after-crash", [ev()], 0).last_position == len(events) + 1
