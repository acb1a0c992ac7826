"""Built-in metrics, by name, with DSPy's metric signature ``(example, prediction, trace) -> float``.

Every metric compares each output field of the example (its non-input keys) with the
prediction's field of the same name; a missing or None field scores 0 for that field and
never raises. ``exact_match`` is 1.0 only when every field matches; ``f1`` and ``contains``
average over the fields.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

import dspy

Metric = Callable[[dspy.Example, Any, Any], float]

METRICS: Final = ("exact_match", "f1", "contains")

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


def _mean(scores: list[float]) -> float:
    return sum(scores) / len(scores)


exact_match: Final = _per_field(_exact, min)
f1: Final = _per_field(_f1, _mean)
contains: Final = _per_field(_contains, _mean)

_BY_NAME: Final[dict[str, Metric]] = {"exact_match": exact_match, "f1": f1, "contains": contains}


def get_metric(name: str) -> Metric:
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}") from None
