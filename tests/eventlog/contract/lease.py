"""Who may write: the single-writer lease, and storage that cannot be written."""

from __future__ import annotations

import os

import pytest

from dspyops.eventlog import ANY, EventStore, StoreUnavailable, WriterLocked
from tests.eventlog.contract.base import ContractBase, StoreFactory, ev, fill


class LeaseContract(ContractBase):
    def test_one_writer_lease_at_a_time(self, make_store: StoreFactory) -> None:
        first, second = make_store(), make_store()
        lease = first.writer_lock()
        with pytest.raises(WriterLocked) as info:
            second.writer_lock()
        assert info.value.holder_pid == os.getpid()
        assert str(os.getpid()) in str(info.value)
        lease.release()
        lease.release()  # idempotent
        with second.writer_lock():
            with pytest.raises(WriterLocked):
                first.writer_lock()
        first.writer_lock().release()

    def test_read_only_storage(self, store: EventStore, make_readonly_store: StoreFactory) -> None:
        fill(store, 3)
        readonly = make_readonly_store()
        with pytest.raises(StoreUnavailable, match=r"(?i)read.?only"):
            readonly.append("s", [ev()], ANY)
        # Still fully readable after the failed write, and nothing was written.
        assert readonly.head() == 3
        assert readonly.read() == store.read()
        assert readonly.verify().ok
        with pytest.raises(StoreUnavailable):
            readonly.append("s", [ev()], ANY)
        assert store.head() == 3
