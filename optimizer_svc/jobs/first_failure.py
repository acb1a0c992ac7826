"""The first exception a job's LM calls or modules raised: the cause its Failed event names.

DSPy's parallelizer (``dspy.Evaluate``, the optimizers' threaded loops) catches each
example's exception, logs it with the example itself, and once ``max_errors`` are counted
raises a bare ``Exception("Execution cancelled due to errors or interruption.")`` that names
no cause. The callback below sees every LM call and module end (callbacks travel into DSPy's
worker threads with the context), keeps the first exception, and the runner raises that
instead. The parallelizer's per-example log lines are dropped (``silence_example_errors``):
they print training examples to the server's stderr; the cause reaches the log scrubbed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from dspy.utils.callback import BaseCallback

from optimizer_svc.cancel import JobCancelled

# DSPy's parallelizer's message when it stops after too many failed examples
CANCELLED_BY_ERRORS = "Execution cancelled due to errors or interruption."


class FirstFailure(BaseCallback):
    """Keeps the first exception of an LM call or a module (not a cancellation: ours)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.first: BaseException | None = None

    def keep(self, exception: BaseException | None) -> None:
        if exception is None or isinstance(exception, JobCancelled):
            return
        with self._lock:
            if self.first is None:
                self.first = exception

    def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        self.keep(exception)

    def on_module_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        self.keep(exception)

    def cause_of(self, exc: BaseException) -> BaseException:
        """What to report for ``exc``: the first underlying exception when ``exc`` is DSPy's
        causeless stop, ``exc`` itself otherwise."""
        if str(exc) == CANCELLED_BY_ERRORS and self.first is not None:
            return self.first
        return exc


class _DropExampleErrors(logging.Filter):
    """DSPy's ``Error for {example}: {exception}`` lines: the example is training data."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Error for "))


_FILTER = _DropExampleErrors()


def silence_example_errors() -> None:
    """Idempotent: one filter on the parallelizer's logger, for the whole process."""
    logger = logging.getLogger("dspy.utils.parallelizer")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
