"""LM usage accounting, one tracker for jobs and evaluations alike: calls, tokens and cost.

A job's tracker is its budget's input (optimizer_svc.jobs.budgets) and goes into
JobCompleted/JobCancelled; an evaluation's goes into its report.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dspy.utils.callback import BaseCallback
from dspy.utils.usage_tracker import UsageTracker

from dspyops.connections import Prices
from dspyops.proto import events_pb2 as pb


@dataclass(frozen=True)
class Usage:
    lm_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float = 0.0  # reported by the LM, else from its connection's prices (offline: none)
    # answered from the job's LM cache (dspyops.lmcache): not paid, not in lm_calls
    replayed_lm_calls: int = 0

    def to_proto(self) -> pb.Usage:
        return pb.Usage(
            lm_calls=self.lm_calls,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=self.cost_usd,
            replayed_lm_calls=self.replayed_lm_calls,
        )


class SharedUsageTracker(UsageTracker, BaseCallback):
    """A DSPy usage tracker that every thread of a job or an evaluation shares.

    ``ParallelExecutor`` deep-copies ``settings.usage_tracker`` into each worker thread (so
    ``dspy.track_usage`` loses worker usage); returning ``self`` from ``__deepcopy__`` keeps
    one tally. Only totals are kept, so a long job does not grow a list per call.

    Tokens and cost come in through ``add_usage`` (DSPy calls it after each uncached call);
    LM calls through ``count_call``, which the tracker's own ``on_lm_end`` makes when it is
    in a context's callbacks (an evaluation's), and a job's ProgressCapture makes instead
    (it sees every call anyway: one callback fewer on the job's hot path). A call the job's
    LM cache answered is counted by ``count_replay`` as well, and ``lm_calls`` is the paid
    ones only (every call counted, less the replays).

    ``on_change`` (e.g. a budget check) is called with a snapshot after every update, on the
    thread that made the call. ``prices`` (LM model string -> its connection's prices) cost
    the calls whose provider reports no cost, so ``max_cost_usd`` works for self-hosted models.
    """

    def __init__(self, on_change: Callable[[Usage], None] | None = None) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.lm_calls = 0  # every call, replayed or paid
        self.replayed = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd = 0.0
        self.on_change = on_change
        self.prices: dict[str, Prices] = {}
        # (input tokens, output tokens, cost) of each call, on the calling thread (an
        # evaluation's per-module figures, optimizer_svc.evaluation.stages)
        self.on_usage: Callable[[int, int, float], None] | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedUsageTracker:
        return self

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        prompt = _count(usage_entry.get("prompt_tokens"))
        completion = _count(usage_entry.get("completion_tokens"))
        cost = _cost(usage_entry.get("cost"))
        prices = self.prices.get(lm)
        if not cost and prices:
            cost = prices.cost(prompt, completion)
        with self._lock:
            self.input_tokens += prompt
            self.output_tokens += completion
            self.cost_usd += cost
        if self.on_usage is not None:
            self.on_usage(prompt, completion, cost)
        self._changed()

    def count_call(self) -> None:
        with self._lock:
            self.lm_calls += 1
        self._changed()

    def count_replay(self) -> None:
        """A call answered from the job's LM cache (its ``count_call`` comes too, at its end)."""
        with self._lock:
            self.replayed += 1
        self._changed()

    def on_lm_end(self, call_id: str, outputs: Any | None, exception: BaseException | None = None) -> None:
        self.count_call()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.snapshot())

    def mirror(self, usage: Usage) -> None:
        """Take the totals a job running elsewhere reported (a Ray task's own tracker)."""
        with self._lock:
            self.lm_calls = usage.lm_calls + usage.replayed_lm_calls
            self.replayed = usage.replayed_lm_calls
            self.input_tokens = usage.input_tokens
            self.output_tokens = usage.output_tokens
            self.cost_usd = usage.cost_usd

    def snapshot(self) -> Usage:
        with self._lock:
            # a replay is counted as it is answered, its call at its end: never below zero between
            paid = max(0, self.lm_calls - self.replayed)
            return Usage(paid, self.input_tokens, self.output_tokens, self.cost_usd, self.replayed)


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _cost(value: Any) -> float:
    """A provider-reported cost in USD (e.g. OpenRouter's ``usage.cost``); 0 when absent."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value and value >= 0:
        return float(value)
    return 0.0
