"""How a retrain's feedback is split (gateway_svc.learning.window.split): the most recent
`holdout_fraction` held out, at least one example on each side, the window the most recent
MAX_WINDOW examples, its tokens and digests those of the parts."""

from __future__ import annotations

import hashlib
import json

import pytest

from dspyops.proto import gateway_pb2 as gpb
from gateway_svc.learning.window import MAX_WINDOW, split, token_of


def examples(n: int) -> list[gpb.FeedbackExample]:
    rows = []
    for i in range(n):
        e = gpb.FeedbackExample(
            prediction_id=f"p{i}", inputs={"text": f"t{i}"}, expected={"label": f"l{i % 3}"}
        )
        e.recorded_at.FromMicroseconds(1_000_000 + i)
        rows.append(e)
    return rows


@pytest.mark.parametrize(
    ("n", "fraction", "held"), [(2, 0.3, 1), (10, 0.3, 3), (11, 0.3, 4), (5, 0.99, 4), (40, 0.01, 1)]
)
def test_the_most_recent_share_is_held_out_one_at_least_each_side(n: int, fraction: float, held: int) -> None:
    rows = examples(n)
    s = split(rows, "", fraction)
    assert [e.prediction_id for e in s.holdout] == [e.prediction_id for e in rows[n - held :]]
    assert [e.prediction_id for e in s.train] == [e.prediction_id for e in rows[: n - held]]
    w = s.window
    assert (w.train_n, w.holdout_n, w.first_token, w.last_token) == (n - held, held, "", token_of(rows[-1]))
    expected = [{"inputs": dict(e.inputs), "expected": dict(e.expected)} for e in rows[n - held :]]
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()
    assert w.holdout_digest == hashlib.sha256(canonical).hexdigest() != w.train_digest


def test_a_window_keeps_the_most_recent_examples_and_starts_after_the_one_before() -> None:
    rows = examples(MAX_WINDOW + 7)
    s = split(rows, "", 0.3)
    assert s.window.train_n + s.window.holdout_n == MAX_WINDOW
    assert s.train[0].prediction_id == "p7" and s.window.first_token == token_of(rows[6])
