"""Sticky variant assignment, compatible with GrowthBook's SDKs.

The same routing key, seed and weights give the same variant in any language that has a
GrowthBook SDK: FNV-1a 32-bit hashing (v1 and v2), bucket ranges from cumulative weights
scaled by coverage, and the half-open range lookup. Verified against the SDKs' own
cross-language cases in shared/conformance/growthbook_cases.json, and against the official
Python SDK for random Unicode keys (tests/gateway/test_assignment_parity.py).

The hash runs over UTF-16 code units, as the JavaScript SDK's `hashFnv32a` does
(`str.charCodeAt(i)`) and the Python SDK too: a character outside the Basic Multilingual
Plane (an emoji) counts as its two surrogates. FNV-1a over 16-bit units is in no library
(they hash bytes), hence the loop here.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_UTF16_NATIVE = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"  # so a "H" view reads units
_BEYOND_LATIN1 = re.compile("[^\x00-\xff]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # characters that take two UTF-16 code units


def fnv1a32(value: str) -> int:
    """FNV-1a 32-bit over the UTF-16 code units of `value` (GrowthBook's hashFnv32a)."""
    h = _FNV_OFFSET
    units: Iterable[int]
    if value.isascii():  # most keys: a byte is a code unit, and bytes iterate fastest
        units = value.encode()
    elif _BEYOND_LATIN1.search(value) is None:  # josé, müller: still one byte per code unit
        units = value.encode("latin-1")
    elif _ASTRAL.search(value) is None:  # the rest of the BMP: a code point is a code unit
        units = map(ord, value)
    else:  # a character past U+FFFF is two code units, its surrogate pair
        units = memoryview(value.encode(_UTF16_NATIVE, "surrogatepass")).cast("H")
    for unit in units:
        h ^= unit
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h


def gb_hash(seed: str, value: str, version: int) -> float | None:
    """A number in [0, 1) for (seed, value); None for an unknown hash version."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def equal_weights(n: int) -> list[float]:
    return [1.0 / n] * n if n >= 1 else []


def bucket_ranges(
    n: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    coverage = min(max(coverage, 0.0), 1.0)
    chosen = list(weights) if weights is not None else equal_weights(n)
    if len(chosen) != n:
        chosen = equal_weights(n)
    total = sum(chosen)
    if total < 0.99 or total > 1.01:
        chosen = equal_weights(n)
    ranges = []
    cumulative = 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """Index of the half-open range holding n, or -1 (outside coverage)."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def in_namespace(user_id: str, namespace: tuple[str, float, float]) -> bool:
    n = gb_hash("__" + namespace[0], user_id, 1)
    return n is not None and namespace[1] <= n < namespace[2]


def run_experiment(attributes: dict[str, object], experiment: dict[str, object]) -> tuple[object, bool, bool]:
    """GrowthBook's experiment run, for the fields dspyops uses (key, variations, weights,
    coverage, seed, hashVersion, hashAttribute): (value, in_experiment, hash_used).

    Outside the experiment (fewer than two variations, no hash attribute, a key outside
    the coverage) the first variation is served and nothing is counted, as in the SDKs.
    """
    variations = list(experiment["variations"])  # type: ignore[call-overload]
    not_in = (variations[0] if variations else None, False, False)
    if len(variations) < 2:
        return not_in
    hash_value = attributes.get(str(experiment.get("hashAttribute") or "id"))
    if hash_value in (None, ""):
        return not_in
    seed = str(experiment.get("seed") or experiment["key"])
    n = gb_hash(seed, str(hash_value), int(experiment.get("hashVersion") or 1))  # type: ignore[call-overload]
    if n is None:
        return not_in
    weights = experiment.get("weights")
    coverage = experiment.get("coverage")
    ranges = bucket_ranges(
        len(variations),
        1.0 if coverage is None else float(coverage),  # type: ignore[arg-type]
        list(weights) if weights is not None else None,  # type: ignore[call-overload]
    )
    index = choose_variation(n, ranges)
    if index < 0:
        return not_in
    return variations[index], True, True
