"""Budgets of one optimization job: wall time, LM calls, tokens and cost.

A budget never stops a compile by itself: when one is exceeded, ``BudgetGuard`` trips the
job's ``CancelToken`` with the budget's name, and the job stops exactly as on a user cancel
(the ``JobCancelled`` BaseException from the callback placed last, the metric, GEPA's stop
callback). So the job ends Cancelled with ``budget`` set and the usage spent so far.

LM calls are reserved as they are about to be paid for, on whichever worker thread: the call
that would exceed ``max_lm_calls`` trips the token before it is made, so a job never makes
more calls than its budget, threads or not. Only paid calls count: the job's LMs
(dspyops.lmcache.lm.CachedLM) call ``reserve_paid_call`` on a cache miss, and a call the
job's LM cache replays costs nothing and reserves nothing; any other LM is reserved at its
start (``on_lm_start``). Tokens and cost are only known once a call
returns: they are checked after each update of the ``SharedUsageTracker`` every DSPy worker
thread shares, and the calls already in flight on other worker threads when the budget
trips still complete and are counted, so a threaded compile can end past ``max_tokens`` by
up to ``num_threads - 1`` calls' worth of tokens.

Cost is what the LM reports in its usage (``cost`` in the usage entry, as e.g. OpenRouter
does), or else the tokens priced by the LM connection's ``input_usd_per_mtok`` /
``output_usd_per_mtok`` (self-hosted servers report no cost). The offline connection has no
prices, so ``max_cost_usd`` cannot trip offline.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from dspy.utils.callback import BaseCallback

from dspyops.errors import InvalidArgument
from dspyops.lmcache.lm import CachedLM
from dspyops.proto import events_pb2 as pb
from optimizer_svc.cancel import CancelToken
from optimizer_svc.progress.usage import Usage

MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Budget:
    timeout_seconds: float = 0.0  # 0: none, for each field
    max_lm_calls: int = 0
    max_tokens: int = 0  # input + output
    max_cost_usd: float = 0.0

    @property
    def empty(self) -> bool:
        return not (self.timeout_seconds or self.max_lm_calls or self.max_tokens or self.max_cost_usd)

    def exceeded(self, usage: Usage) -> tuple[str, str] | None:
        """(budget name, reason) of the first token or cost budget ``usage`` is past, if any."""
        tokens = usage.input_tokens + usage.output_tokens
        if self.max_tokens and tokens > self.max_tokens:
            return "max_tokens", f"budget max_tokens={self.max_tokens} exceeded ({tokens} tokens)"
        if self.max_cost_usd and usage.cost_usd > self.max_cost_usd:
            return (
                "max_cost_usd",
                f"budget max_cost_usd={self.max_cost_usd:g} exceeded (${usage.cost_usd:.4f})",
            )
        return None

    def to_proto(self) -> pb.Budget:
        return pb.Budget(
            timeout_seconds=self.timeout_seconds,
            max_lm_calls=self.max_lm_calls,
            max_tokens=self.max_tokens,
            max_cost_usd=self.max_cost_usd,
        )


def budget_from_proto(budget: pb.Budget, field: str = "budget") -> Budget:
    timeout, cost = budget.timeout_seconds, budget.max_cost_usd
    if not math.isfinite(timeout) or not 0.0 <= timeout <= MAX_TIMEOUT_SECONDS:
        problem = f"must be in [0, {MAX_TIMEOUT_SECONDS:g}], got {timeout}"
        raise InvalidArgument(f"{field}.timeout_seconds", problem)
    if budget.max_lm_calls < 0:
        raise InvalidArgument(f"{field}.max_lm_calls", f"must be >= 0, got {budget.max_lm_calls}")
    if budget.max_tokens < 0:
        raise InvalidArgument(f"{field}.max_tokens", f"must be >= 0, got {budget.max_tokens}")
    if not math.isfinite(cost) or cost < 0.0:
        raise InvalidArgument(f"{field}.max_cost_usd", f"must be a number >= 0, got {cost}")
    return Budget(timeout, budget.max_lm_calls, budget.max_tokens, cost)


class BudgetGuard(BaseCallback):
    """Trips ``token`` when the job would exceed its budget: at an LM call's start (calls),
    after usage updates (tokens, cost) and on a timer (wall time).

    A callback placed before ``CancelCallback``, which then refuses the call."""

    def __init__(self, budget: Budget, token: CancelToken) -> None:
        self.budget = budget
        self.token = token
        self._lock = threading.Lock()
        self.calls_started = 0
        self._timer: threading.Timer | None = None

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if isinstance(instance, CachedLM):
            return  # reserves its paid calls itself (reserve_paid_call), not its replays
        self._reserve()

    def reserve_paid_call(self) -> None:
        """Before a call is paid for: raises JobCancelled when it would exceed the budget (or the
        job is cancelled already), so the call is never made."""
        self._reserve()
        self.token.check()

    def _reserve(self) -> None:
        if not self.budget.max_lm_calls or self.token.cancelled:
            return
        with self._lock:
            if self.calls_started >= self.budget.max_lm_calls:
                over = True
            else:
                self.calls_started += 1
                over = False
        if over:
            limit = self.budget.max_lm_calls
            self.token.cancel(
                f"budget max_lm_calls={limit} reached: stopped before LM call {limit + 1}",
                budget="max_lm_calls",
            )

    def check(self, usage: Usage) -> None:
        if self.token.cancelled:
            return
        hit = self.budget.exceeded(usage)
        if hit is not None:
            name, reason = hit
            self.token.cancel(reason, budget=name)

    def start_timer(self) -> None:
        if self.budget.timeout_seconds:
            seconds = self.budget.timeout_seconds
            self._timer = threading.Timer(
                seconds,
                self.token.cancel,
                args=(f"budget timeout_seconds={seconds:g} reached",),
                kwargs={"budget": "timeout_seconds"},
            )
            self._timer.daemon = True
            self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


__all__ = ["Budget", "BudgetGuard", "budget_from_proto"]
