"""Built-in metrics, by name, with DSPy's metric signature ``(example, prediction, trace) -> float``.

Every metric compares each output field of the example (its non-input keys) with the
prediction's field of the same name; a missing or None field scores 0 for that field and
never raises. ``exact_match`` is 1.0 only when every field matches; ``f1`` and ``contains``
average over the fields. ``rouge_l`` is the ROUGE-L F-measure (longest common subsequence
of tokens; tokens are the lower-cased, punctuation-free, whitespace-separated words).

Custom metrics are named ``module:function``. Only modules on an allowlist fixed when the
server starts (``DSPYOPS_METRIC_MODULES``, comma-separated module names) are ever imported:
a request can never make the server import an arbitrary module.
"""

from __future__ import annotations

import importlib
import os
import re
import string
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

import dspy

from dspyops.errors import shown

Metric = Callable[[dspy.Example, Any, Any], float]

METRICS: Final = ("exact_match", "f1", "contains", "rouge_l")
METRIC_MODULES_ENV: Final = "DSPYOPS_METRIC_MODULES"

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles, collapse whitespace."""
    text = text.casefold().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _output_keys(example: dspy.Example, prediction: Any) -> list[str]:
    if getattr(example, "_input_keys", None) is not None:
        return list(example.labels().keys())
    # No inputs declared: the fields the prediction answers are the outputs to check.
    return [k for k in example.keys() if _predicted(prediction, k) is not None]


def _predicted(prediction: Any, key: str) -> str | None:
    try:
        value = prediction[key] if isinstance(prediction, dict) else getattr(prediction, key)
    except (KeyError, AttributeError):
        return None
    return None if value is None else str(value)


def _per_field(score: Callable[[str, str], float], combine: Callable[[list[float]], float]) -> Metric:
    def metric(example: dspy.Example, prediction: Any, trace: Any = None) -> float:
        keys = _output_keys(example, prediction)
        if not keys or prediction is None:
            return 0.0
        scores = []
        for key in keys:
            got = _predicted(prediction, key)
            scores.append(0.0 if got is None else score(str(example[key]), got))
        return combine(scores)

    return metric


def _exact(expected: str, got: str) -> float:
    return float(_squash(expected) == _squash(got))


def _f1(expected: str, got: str) -> float:
    want, have = normalize_answer(expected).split(), normalize_answer(got).split()
    if not want or not have:
        return float(want == have)
    common = sum((Counter(want) & Counter(have)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(have), common / len(want)
    return 2 * precision * recall / (precision + recall)


def _contains(expected: str, got: str) -> float:
    return float(_squash(expected) in _squash(got))


def rouge_tokens(text: str) -> list[str]:
    return text.casefold().translate(_PUNCT).split()


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def _rouge_l(expected: str, got: str) -> float:
    want, have = rouge_tokens(expected), rouge_tokens(got)
    if not want or not have:
        return float(want == have)
    lcs = lcs_length(want, have)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(have), lcs / len(want)
    return 2 * precision * recall / (precision + recall)


def _mean(scores: list[float]) -> float:
    return sum(scores) / len(scores)


exact_match: Final = _per_field(_exact, min)
f1: Final = _per_field(_f1, _mean)
contains: Final = _per_field(_contains, _mean)
rouge_l: Final = _per_field(_rouge_l, _mean)

_BY_NAME: Final[dict[str, Metric]] = {
    "exact_match": exact_match,
    "f1": f1,
    "contains": contains,
    "rouge_l": rouge_l,
}
_MODULE_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FUNCTION_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def get_metric(name: str) -> Metric:
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown metric {shown(name)}; known metrics: {', '.join(METRICS)}") from None


def allowed_metric_modules(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The modules custom metrics may come from: ``DSPYOPS_METRIC_MODULES`` (comma-separated),
    read once when a server starts. Empty: built-in metrics only."""
    raw = (os.environ if environ is None else environ).get(METRIC_MODULES_ENV, "")
    return frozenset(name.strip() for name in raw.split(",") if _MODULE_RE.match(name.strip()))


def resolve_metric(name: str, allowed_modules: Collection[str] = ()) -> Metric:
    """A built-in metric by name, or ``module:function`` from an allowlisted module.

    Raises ``ValueError("metric: ...")``; a module outside ``allowed_modules`` is refused
    before anything is imported.
    """
    if name in _BY_NAME:
        return _BY_NAME[name]
    if not isinstance(name, str) or ":" not in name:
        known = ", ".join(METRICS)
        raise ValueError(f"metric: unknown metric {shown(name)}; known: {known}, or module:function")
    module_name, _, function = name.partition(":")
    if not _MODULE_RE.match(module_name) or not _FUNCTION_RE.match(function):
        raise ValueError(f"metric: {shown(name)} is not of the form module.path:function")
    if module_name not in allowed_modules:
        allowed = ", ".join(sorted(allowed_modules)) or "none"
        raise ValueError(
            f"metric: module {shown(module_name)} is not allowlisted for custom metrics "
            f"(the server's {METRIC_MODULES_ENV}: {allowed})"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an allowlisted module that fails to import is the operator's problem
        raise ValueError(f"metric: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    metric: Metric | None = getattr(module, function, None)
    if not callable(metric):
        raise ValueError(f"metric: {module_name!r} has no function {shown(function)}")
    return metric
