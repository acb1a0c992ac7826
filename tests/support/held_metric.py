"""A metric that holds a job mid-run: it waits while the file named by DSPYOPS_TEST_HOLD_FILE
exists, then scores as exact_match. Tests allowlist it (DSPYOPS_METRIC_MODULES) in a real
optimizer process to keep a job running for as long as they need, with no timing guess."""

from __future__ import annotations

import os
import time
from typing import Any

import dspy

from dspyops.metrics import exact_match

HOLD_ENV = "DSPYOPS_TEST_HOLD_FILE"
NAME = "tests.support.held_metric:held_exact_match"


def held_exact_match(example: dspy.Example, prediction: Any, trace: Any = None) -> float:
    hold = os.environ.get(HOLD_ENV, "")
    while hold and os.path.exists(hold):
        time.sleep(0.02)
    return exact_match(example, prediction, trace)
