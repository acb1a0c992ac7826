"""A judge's budget on one gateway: LM calls and cost per clock hour (the hour the
gateway's clock is in, GatewayConfig.clock, so a test moves time instead of waiting).

Per gateway, not shared: each gateway runs its own evaluator queue, and a shared counter
would need a write per judge call to a store every gateway sees. Exhaustion is a counter in
ListEvaluators (over_budget), not an event: it would be appended by every gateway every hour
it happens, each append moving the deployment stream's version and aborting commands sent
with expected_version meanwhile (the feedback slice's reason for capture deletions too)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HourlyBudget:
    max_calls: int  # 0: no limit
    max_cost: float  # USD; 0: no limit
    hour: int = -1
    calls: int = 0
    cost: float = 0.0

    def _roll(self, now: float) -> None:
        hour = int(now // 3600)
        if hour != self.hour:
            self.hour, self.calls, self.cost = hour, 0, 0.0

    def start(self, now: float) -> bool:
        """Whether a judge run may start now (this hour's calls and cost under the limits);
        if so it holds one call of the budget until `spend` says what it used, so concurrent
        workers cannot all pass the check on the same last call. Cost cannot be held ahead:
        runs in flight may pass the cost limit by their own cost."""
        self._roll(now)
        if self.max_calls and self.calls >= self.max_calls:
            return False
        if self.max_cost and self.cost >= self.max_cost:
            return False
        self.calls += 1
        return True

    def spend(self, now: float, calls: int, cost: float) -> None:
        """What a started run used (the call held at `start` given back first)."""
        if int(now // 3600) == self.hour:
            self.calls -= 1
        self._roll(now)
        self.calls += calls
        self.cost += cost
