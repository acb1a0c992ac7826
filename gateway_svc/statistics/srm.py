"""Sample-ratio mismatch: are the arms' counts what the configured split would give?"""

from __future__ import annotations

from collections.abc import Sequence

from gateway_svc.statistics.distributions import scipy_stats


def srm_p_value(observed_counts: Sequence[int], expected_weights: Sequence[float]) -> float:
    """Sample-ratio-mismatch p-value: Pearson's chi-square test of counts vs the split.

    ``expected_weights`` need not sum to 1. Returns 1.0 when nothing was observed, or
    when only one arm has weight; 0.0 when an arm with weight 0 received units (that
    cannot happen with a working assignment).
    """
    if len(observed_counts) != len(expected_weights):
        raise ValueError(
            f"observed_counts: length {len(observed_counts)} differs from "
            f"expected_weights length {len(expected_weights)}"
        )
    if any(c < 0 for c in observed_counts):
        raise ValueError("observed_counts: must be >= 0")
    if any(not w >= 0 for w in expected_weights) or not sum(expected_weights) > 0:
        raise ValueError("expected_weights: must be >= 0 with a positive sum")
    total = sum(observed_counts)
    if total == 0:
        return 1.0
    if any(c > 0 and w == 0 for c, w in zip(observed_counts, expected_weights, strict=True)):
        return 0.0
    pairs = [(c, w) for c, w in zip(observed_counts, expected_weights, strict=True) if w > 0]
    if len(pairs) < 2:
        return 1.0
    weight_sum = sum(w for _, w in pairs)
    expected = [w / weight_sum * total for _, w in pairs]
    # floats: counts near 2**63 would otherwise make numpy fall back to object arrays
    return float(scipy_stats().chisquare([float(c) for c, _ in pairs], expected).pvalue)
