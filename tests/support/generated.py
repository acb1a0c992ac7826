"""A labelled dataset of made-up words, and the zero-demo optimizer params the tests use."""

from __future__ import annotations

import random
from typing import Any

ZERO_DEMOS: dict[str, dict[str, Any]] = {
    "MIPROv2": {"auto": "light", "max_bootstrapped_demos": 0, "max_labeled_demos": 0},
    "GEPA": {"auto": "light"},  # GEPA only ever rewrites instructions
}


def generated_rows(seed: int) -> list[dict[str, str]]:
    """Five labels, each with six made-up words; every text has two of its label's words among
    four made-up filler words shared by all labels."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(3))

    labels = [word() for _ in range(5)]
    vocab = {label: [word() for _ in range(6)] for label in labels}
    filler = [word() for _ in range(30)]
    rows = []
    for i in range(60):
        label = labels[i % 5]
        words = rng.sample(vocab[label], 2) + rng.sample(filler, 4)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label})
    return rows
