"""Many threads on one log: racing writers, concurrent appends, close() under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from dspyops.eventlog import EventStore, StoreUnavailable, WrongExpectedVersion
from tests.eventlog.contract.base import ContractBase, StoreFactory, fill
from tests.eventlog.workers import check_log, tagged_batch, write_batches


class ThreadContract(ContractBase):
    def test_racing_writers_exactly_one_wins(self, make_store: StoreFactory) -> None:
        """All threads read version 0, then all append expecting it: one wins, the rest get a
        WrongExpectedVersion naming the winner's version."""
        store = make_store()
        n = 8
        barrier = threading.Barrier(n)
        outcomes: list[object] = [None] * n

        def racer(i: int) -> None:
            version = store.stream_version("deployment-web")
            barrier.wait()
            try:
                outcomes[i] = store.append("deployment-web", tagged_batch(str(i), 0, 2), version)
            except WrongExpectedVersion as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        winners = [o for o in outcomes if not isinstance(o, WrongExpectedVersion)]
        losers = [o for o in outcomes if isinstance(o, WrongExpectedVersion)]
        assert len(winners) == 1 and len(losers) == n - 1, outcomes
        assert all((e.expected, e.actual) == (0, 2) for e in losers)
        assert store.head() == 2

    def test_threads_appending_concurrently(self, make_store: StoreFactory) -> None:
        threads_n, batches, size = 8, 12, 3
        streams = ["program-a", "program-b", "deployment-web"]
        stores = [make_store(), make_store()]  # two instances in one process, too
        conflicts = [0] * threads_n
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            try:
                conflicts[i] = write_batches(stores[i % 2], f"t{i}", streams, batches, size)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        events = stores[0].read(limit=10_000)
        check_log(events, {(f"t{i}", b): size for i in range(threads_n) for b in range(batches)})
        assert stores[1].verify().ok

    def test_close_while_other_threads_are_busy(self, make_store: StoreFactory) -> None:
        """close() racing with reads, verify and subscriptions in other threads: every thread
        ends with its results or StoreUnavailable. (Closing a SQLite connection under a running
        statement used to crash the interpreter here.)"""
        fill(make_store(), 20)
        for round_ in range(30):
            self._close_under_load(make_store(), delay=0.001 * (round_ % 4))

    @staticmethod
    def _close_under_load(store: EventStore, delay: float) -> None:
        failures: list[BaseException] = []

        def busy(work: Callable[[], object]) -> None:
            try:
                while not store.closed:  # a subscription just ends when the store closes
                    work()
            except StoreUnavailable:
                pass
            except BaseException as exc:
                failures.append(exc)

        def tail() -> None:
            for _ in store.subscribe(0, poll_interval=0.0005, page_size=3):
                pass

        threads = [
            threading.Thread(target=busy, args=(lambda: store.read(limit=20),)),
            threading.Thread(target=busy, args=(store.verify,)),
            threading.Thread(target=busy, args=(tail,)),
        ]
        for t in threads:
            t.start()
        time.sleep(delay)
        store.close()
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads)
        assert not failures, failures
