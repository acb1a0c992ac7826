"""Custom metrics for the tests: allowlisted through DSPYOPS_METRIC_MODULES."""

from __future__ import annotations

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
