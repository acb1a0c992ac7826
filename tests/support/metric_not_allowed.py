"""A metric module that is never allowlisted: the server must never import it."""

from __future__ import annotations

from typing import Any

IMPORTED = True


def metric(example: Any, prediction: Any, trace: Any = None) -> float:
    return 1.0
