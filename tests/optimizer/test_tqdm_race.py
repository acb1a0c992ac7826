"""The interleaving that failed a COPRO job running beside a MIPROv2 job: DSPy's
ParallelExecutor clears tqdm's bar registry (no lock) between another thread's bar being
registered in `tqdm.__new__` and removing itself in `__init__` (a disabled bar)."""

from __future__ import annotations

import io

import tqdm

import optimizer_svc.jobs.runner  # noqa: F401 - installs the tolerant registry, as the service does
from optimizer_svc.tqdm_race import _TolerantWeakSet, install


def test_a_bar_cleared_from_the_registry_mid_construction_does_not_raise() -> None:
    assert isinstance(tqdm.tqdm._instances, _TolerantWeakSet)
    bar = tqdm.tqdm.__new__(tqdm.tqdm)
    tqdm.tqdm._instances.clear()  # what ParallelExecutor.execute does, from another job's thread
    bar.__init__(range(3), disable=True)  # raised KeyError(<weakref ... to 'tqdm'>) before
    assert list(bar) == [0, 1, 2]


def test_install_is_idempotent_and_keeps_live_bars() -> None:
    with tqdm.tqdm(range(2), disable=False, file=io.StringIO()) as live:
        install()
        install()
        assert live in tqdm.tqdm._instances
