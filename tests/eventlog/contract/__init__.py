"""The behaviour every EventStore backend must have, as an abstract test suite.

A backend's test module subclasses ``EventStoreContract`` (and ``ProcessContract`` when
other processes share its log) and provides the fixtures marked "backend hook" in
``base`` (the pattern of the eventsourcing library's abstract recorder tests). The class
names do not start with "Test", so pytest runs them only through those subclasses. One
module per part: ``appends``, ``reads``, ``subscriptions``, ``threads``, ``chain``,
``lease``, ``clock``, ``processes``.
"""

from __future__ import annotations

from tests.eventlog.contract.appends import AppendContract
from tests.eventlog.contract.chain import ChainContract
from tests.eventlog.contract.clock import ClockContract
from tests.eventlog.contract.lease import LeaseContract
from tests.eventlog.contract.processes import ProcessContract
from tests.eventlog.contract.reads import ReadContract
from tests.eventlog.contract.subscriptions import SubscriptionContract
from tests.eventlog.contract.threads import ThreadContract

__all__ = ["EventStoreContract", "ProcessContract"]


class EventStoreContract(
    AppendContract,
    ReadContract,
    SubscriptionContract,
    ThreadContract,
    ChainContract,
    LeaseContract,
    ClockContract,
):
    """Every part of the contract that a backend whose log lives in one process can keep."""
