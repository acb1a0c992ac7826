"""The log's clock: ``clock_us`` reads the clock that stamps ``recorded_at``, so a reading
and a stored time compare without two machines' clocks in between (lease expiry relies on
it). Only the order of readings of that one clock is asserted, never the wall time."""

from __future__ import annotations

from dspyops.eventlog import ANY, EventStore
from dspyops.eventlog.hashchain import micros
from tests.eventlog.contract.base import ContractBase, ev


class ClockContract(ContractBase):
    def test_clock_is_integer_microseconds_and_does_not_go_back(self, store: EventStore) -> None:
        readings = [store.clock_us() for _ in range(20)]
        assert all(type(r) is int for r in readings)
        assert readings == sorted(readings)

    def test_an_append_is_recorded_between_readings_before_and_after_it(self, store: EventStore) -> None:
        store.append("older", [ev()], 0)
        for i in range(5):
            before = store.clock_us()
            store.append("program-a", [ev(b"%d" % i)], ANY)
            after = store.clock_us()
            recorded = micros(store.read_stream("program-a")[-1].recorded_at)
            assert before <= recorded <= after

    def test_a_batch_shares_one_recorded_at_from_the_clock(self, store: EventStore) -> None:
        before = store.clock_us()
        store.append("program-b", [ev(b"1"), ev(b"2"), ev(b"3")], 0)
        stamps = {micros(e.recorded_at) for e in store.read_stream("program-b")}
        assert len(stamps) == 1 and before <= stamps.pop() <= store.clock_us()
