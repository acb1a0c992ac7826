"""Which predictions an evaluator samples: a hash of the evaluator's name and the prediction
id below its share. Deterministic, so every gateway samples the same predictions and a replay
can say why one was (or was not) evaluated; the name is in the hash so two evaluators at 10%
look at different predictions rather than the same tenth."""

from __future__ import annotations

import hashlib
from typing import Final

_SCALE: Final = float(1 << 64)


def sample_point(name: str, prediction_id: str) -> float:
    """The prediction's point in [0, 1) for evaluator `name` (sha256, its first 8 bytes)."""
    digest = hashlib.sha256(f"{name}\x00{prediction_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def sampled(name: str, prediction_id: str, share: float) -> bool:
    return sample_point(name, prediction_id) < share
