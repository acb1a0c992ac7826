"""An arm reduced to sufficient statistics (count, sum, sum of squares), the outcomes that
may enter them, and the summaries no outcomes of a metric could have produced."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Metric = Literal["binary", "continuous"]

METRICS: tuple[str, ...] = ("binary", "continuous")

# The largest magnitude a continuous outcome may have to enter the statistics. The moments
# are running sums of v and v*v: with |v| <= 1e100 a sum of squares stays below 1e308 (the
# largest double) for up to 1e108 outcomes, and every intermediate of the tests (variances,
# their squares in Welch's degrees of freedom, the mSPRT exponent) stays finite. No score,
# rate, latency or cost comes near it; a value beyond it is a bug of the sender.
CONTINUOUS_LIMIT = 1e100
# the bounds on the moments of n outcomes in range, with room for the rounding of the sums
_LIMIT_SUM = CONTINUOUS_LIMIT * (1 + 1e-9)
_LIMIT_SUM_SQ = CONTINUOUS_LIMIT * CONTINUOUS_LIMIT * (1 + 1e-9)
_MAX_N = 2**63  # COUNT(*) in SQLite is a signed 64-bit integer; beyond it n is not a count


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric: must be one of {METRICS}, got {metric!r}")


def outcome_in_range(metric: str, value: float) -> bool:
    """May this outcome enter the statistics of a ``metric`` experiment or canary?

    Binary: exactly 0 or 1. Continuous: finite, with ``|value| <= CONTINUOUS_LIMIT``.
    """
    check_metric(metric)
    if metric == "binary":
        return value in (0.0, 1.0)
    return math.isfinite(value) and abs(value) <= CONTINUOUS_LIMIT


@dataclass(frozen=True)
class ArmSummary:
    """Sufficient statistics of one arm: count, sum and sum of squares of its outcomes.

    Binary outcomes are recorded as 0/1, so ``total`` is the number of successes and
    ``total_sq == total``. Summaries are immutable; :meth:`add` and :meth:`merge` return
    new ones, so a running summary can be shared between readers without locks.

    The variance is computed from the raw moments, which loses precision when the mean
    is huge compared with the spread (catastrophic cancellation); for scores, rates and
    latencies this is far below any statistical error, and it is clamped at zero.
    """

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.n <= _MAX_N:
            raise ValueError(f"n: must be a count in [0, 2**63], got {self.n}")
        if self.total_sq < 0:
            raise ValueError(f"total_sq: must be >= 0, got {self.total_sq}")

    @classmethod
    def from_values(cls, values: Iterable[float]) -> ArmSummary:
        """The summary of a sequence of outcomes."""
        n, total, total_sq = 0, 0.0, 0.0
        for value in values:
            v = float(value)
            n += 1
            total += v
            total_sq += v * v
        return cls(n, total, total_sq)

    @classmethod
    def from_counts(cls, successes: int, n: int) -> ArmSummary:
        """The summary of ``n`` binary outcomes of which ``successes`` are 1."""
        if not 0 <= successes <= n:
            raise ValueError(f"successes: must be in [0, n={n}], got {successes}")
        return cls(n, float(successes), float(successes))

    def add(self, value: float) -> ArmSummary:
        """This summary with one more outcome."""
        v = float(value)
        return ArmSummary(self.n + 1, self.total + v, self.total_sq + v * v)

    def merge(self, other: ArmSummary) -> ArmSummary:
        """The summary of the union of two disjoint sets of outcomes."""
        return ArmSummary(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    @property
    def mean(self) -> float:
        """Sample mean (the success rate for binary outcomes); 0.0 when ``n == 0``."""
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Sample variance with ``ddof=1``; 0.0 when ``n < 2``."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


def unusable(arm: ArmSummary, metric: str) -> str:
    """Why no outcomes of ``metric`` could have produced this summary ("" when they could).

    Such an arm is never compared (p-value 1.0, neutral intervals), so a bad summary can
    neither raise nor tip a decision: binary totals outside [0, n] would make the
    Bernoulli variance p(1-p) negative; non-finite or overflowing moments make every test
    meaningless.
    """
    check_metric(metric)
    if not (math.isfinite(arm.total) and math.isfinite(arm.total_sq)):
        return f"its totals are not finite (total={arm.total:g}, total_sq={arm.total_sq:g})"
    if metric == "binary":
        if not 0.0 <= arm.total <= arm.n:
            return f"{arm.total:g} successes of {arm.n} outcomes is not a binary result"
    elif abs(arm.total) > arm.n * _LIMIT_SUM or arm.total_sq > arm.n * _LIMIT_SUM_SQ:
        return f"its totals exceed {CONTINUOUS_LIMIT:g} per outcome (total={arm.total:g}, n={arm.n})"
    return ""
