"""Two jobs in one process must not crash each other through tqdm's global bar registry.

DSPy's `ParallelExecutor.execute` (dspy 3.4.1, behind every `dspy.Evaluate` and
`dspy.Parallel`) starts with `tqdm.tqdm._instances.clear()`, without tqdm's lock. A bar
that another thread is constructing at that moment (tqdm adds it to the registry in
`__new__`; a disabled bar removes itself again in `__init__` with `WeakSet.remove`) then
finds itself gone and raises KeyError, which ends that job Failed. tqdm already ignores a
missing bar in `_decr_instances`; `install()` makes every removal as tolerant by giving
the registry `discard` semantics. It changes no behaviour of a single job.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakSet

import tqdm


class _TolerantWeakSet(WeakSet[Any]):
    def remove(self, item: Any) -> None:
        self.discard(item)


def install() -> None:
    """Idempotent; called where the optimizer service imports DSPy's evaluation paths."""
    if not isinstance(tqdm.tqdm._instances, _TolerantWeakSet):
        tqdm.tqdm._instances = _TolerantWeakSet(tqdm.tqdm._instances)
