"""Custom metrics for the tests: allowlisted through DSPYOPS_METRIC_MODULES."""

from __future__ import annotations

import threading
import time
from typing import Any

import dspy


def slow_exact(example: dspy.Example, prediction: Any, trace: Any = None) -> float:
    """exact match on `label`, slowly: lets a test see progress before the report."""
    time.sleep(0.05)
    return float(str(prediction.label).strip().lower() == str(example.label).strip().lower())


def half(example: dspy.Example, prediction: Any, trace: Any = None) -> float:
    return 0.5


def explode(example: dspy.Example, prediction: Any, trace: Any = None) -> float:
    raise RuntimeError("metric blew up")


# gated_exact: the first call passes, every later one waits for GATE. A test that sees a
# progress event before it opens the gate has seen progress streamed while the evaluation
# was still running, whatever the machine's speed.
GATE = threading.Event()
_calls = [0]
_calls_lock = threading.Lock()


def close_gate() -> None:
    GATE.clear()
    with _calls_lock:
        _calls[0] = 0


def gated_exact(example: dspy.Example, prediction: Any, trace: Any = None) -> float:
    with _calls_lock:
        first = _calls[0] == 0
        _calls[0] += 1
    if not first and not GATE.wait(60):
        raise RuntimeError("the test never opened the gate")
    return float(str(prediction.label).strip().lower() == str(example.label).strip().lower())
