"""The normal and Student t distributions the tests read their p-values and critical values
from, through scipy, which is imported at the first call, not with the package."""

from __future__ import annotations

import math
from types import ModuleType


# scipy.stats costs ~0.9 s to import, most of a gateway's start: load it at the first
# statistics call (GetExperimentResults, a canary check), not before the first Predict.
def scipy_stats() -> ModuleType:
    from scipy import stats

    return stats


def scipy_special() -> ModuleType:
    from scipy import special

    return special


def lower_tail(stat: float, df: float) -> float:
    """``P(T <= stat)`` under H0: standard normal when ``df`` is infinite, else Student t.

    ``scipy.special`` holds the same CDFs that ``scipy.stats.norm``/``t`` call, without
    the per-call overhead of the distribution objects (which dominated the simulations).
    """
    return float(scipy_special().ndtr(stat) if math.isinf(df) else scipy_special().stdtr(df, stat))


def two_sided(stat: float, df: float) -> float:
    return min(1.0, 2.0 * lower_tail(-abs(stat), df))
