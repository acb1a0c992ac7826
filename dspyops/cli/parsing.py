"""Turning command-line text into call arguments: key=value pairs, JSON parameter values,
points of the log, times, and the rows of a local dataset file (read by
dspyops.datasets, the same reader the server uses). Bad text ends the command with a
message naming what was wrong, as argparse's errors did."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def pairs(items: Sequence[str], what: str) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{what}: expected key=value, got {item!r}")
        result[key] = value
    return result


def weights(items: Sequence[str], what: str, normalise: bool = True) -> dict[str, float]:
    """VERSION=WEIGHT pairs; a weight is a fraction (0.9) or a percent (90% or 90). With
    `normalise` (primary routes) they are scaled to sum to 1, so 90 10, 0.9 0.1 and 90% 10%
    mean the same; without (shadow shares) a percent is divided by 100. One command takes
    one form: "90%" beside a bare "0.1" is refused, since either reading may be meant."""
    result: dict[str, float] = {}
    percents = set()
    for item in items:
        version, sep, text = item.partition("=")
        if not sep or not version or not text:
            raise SystemExit(f"{what}: expected VERSION=WEIGHT (e.g. 1.3.0=90), got {item[:40]!r}")
        if any(c in version for c in ", \t"):
            raise SystemExit(f"{what}: {item[:40]!r}: one VERSION=WEIGHT per argument, separated by spaces")
        if version in result:
            raise SystemExit(f"{what}: version {version[:40]!r} given twice")
        percent = text.endswith("%")
        try:
            weight = float(text[:-1] if percent else text)
        except ValueError:
            raise SystemExit(
                f"{what}: {version[:40]}: expected a number or a percent, got {text[:20]!r}"
            ) from None
        if not math.isfinite(weight) or weight < 0:
            raise SystemExit(f"{what}: {version[:40]}: a weight is a number >= 0, got {text[:20]!r}")
        percents.add(percent)
        result[version] = weight / 100 if percent else weight
    if len(percents) > 1:
        raise SystemExit(f"{what}: mixes percents (90%) and bare numbers: use one form")
    if normalise and result:
        total = sum(result.values())
        if total <= 0:
            raise SystemExit(f"{what}: the weights add up to 0")
        result = {version: weight / total for version, weight in result.items()}
    return result


def numbers(text: str, what: str) -> list[float]:
    """Comma-separated numbers ("" : none)."""
    try:
        return [float(x) for x in text.split(",")] if text else []
    except ValueError:
        raise SystemExit(f"{what}: expected comma-separated numbers, got {text!r}") from None


def param_value(text: str) -> Any:
    """An optimizer parameter: JSON when it parses (4, true, null, [1, 2]), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_time(text: str, what: str = "time") -> datetime:
    """An ISO time ("2026-11-22T06:00:00Z"; naive means UTC)."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"{what}: expected an ISO time such as 2026-11-22T06:00:00Z, got {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_point(text: str) -> int | datetime:
    """A log position ("42") or an ISO time ("2026-11-22T06:00:00Z"; naive means UTC)."""
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"expected a log position or an ISO time, got {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def dataset_rows(name_or_path: str) -> list[dict[str, Any]]:
    """The rows of a JSONL or CSV file, or of a dataset shipped with dspyops (e.g. support_tickets),
    read with dspyops.datasets.load_dataset. The server takes the signature's inputs, so the
    rows go out as they are in the file."""
    from dspyops.datasets import example_row, load_dataset  # imports dspy: only when a file is read

    # a file here wins over a shipped dataset of that name, as before (load_dataset reads a
    # bare name without ".jsonl" as a shipped one)
    if "/" not in name_or_path and Path(name_or_path).is_file():
        name_or_path = f"./{name_or_path}"
    try:
        return [example_row(example) for example in load_dataset(name_or_path)]
    except (OSError, ValueError) as exc:
        raise SystemExit(str(exc)) from None
