"""DSPy's settings while one loaded version runs: a prediction's, a shadow's or a judge's.

One ``dspy.context`` per call (each costs a copy of DSPy's overrides): the version's prompt
cache as the adapter (gateway_svc.prompt_cache), unless something outside already chose an
adapter, and with metrics (--metrics-port) the usage tracker that counts its LM calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dspy

from gateway_svc.lm_usage import LMUsage, UsageTracker
from gateway_svc.loader import LoadedProgram


@contextmanager
def running(loaded: LoadedProgram, usage: LMUsage | None) -> Iterator[None]:
    settings: dict[str, Any] = {}
    if dspy.settings.adapter is None:  # what DSPy would use is a fresh ChatAdapter: this one
        settings["adapter"] = loaded.adapter
    if usage is not None:
        settings["usage_tracker"] = UsageTracker(usage, loaded, dspy.settings.usage_tracker)
    with dspy.context(**settings):
        yield


__all__ = ["running"]
