"""BulkCollection raises the collector's thresholds while some replica is behind the head and
puts back exactly what was there once none is."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway_svc.bulk_gc import BulkCollection


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


def test_raised_while_any_replica_is_behind_and_restored_after_the_last(
    thresholds: tuple[int, int, int],
) -> None:
    a, b = BulkCollection(), BulkCollection()
    a.enter()
    raised = gc.get_threshold()
    assert raised[0] > thresholds[0]
    a.enter()  # a second full page: no second count
    b.enter()
    a.leave()
    assert gc.get_threshold() == raised  # b is still catching up
    b.leave()
    b.leave()  # leaving twice (caught up, then stopped) gives nothing back twice
    assert gc.get_threshold() == thresholds
    a.leave()
    assert gc.get_threshold() == thresholds
