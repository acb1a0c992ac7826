"""How a retrain's feedback is split (gateway_svc.learning.window.split): a hashed
`holdout_fraction` of the window held out, at least one example on each side, the window the most recent
MAX_WINDOW examples, its tokens and digests those of the parts."""

from __future__ import annotations

import hashlib
import json

import pytest

from dspyops.proto import gateway_pb2 as gpb
from gateway_svc.evaluators.sampling import sample_point
from gateway_svc.learning.window import HOLDOUT, MAX_WINDOW, split, token_of


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
    ("n", "fraction"), [(2, 0.3), (10, 0.3), (200, 0.3), (5, 0.99), (40, 0.01), (3, 1e-9)]
)
def test_a_hashed_share_is_held_out_one_at_least_each_side(n: int, fraction: float) -> None:
    rows = examples(n)
    s = split(rows, "", fraction)
    hashed = [e for e in rows if sample_point(HOLDOUT, e.prediction_id) < fraction]
    if not hashed:
        hashed = rows[-1:]
    elif len(hashed) == n:
        hashed = rows[1:]
    assert [e.prediction_id for e in s.holdout] == [e.prediction_id for e in hashed]
    assert [e.prediction_id for e in s.train] == [e.prediction_id for e in rows if e not in hashed]
    assert s.train and s.holdout and len(s.train) + len(s.holdout) == n
    w = s.window
    assert (w.train_n, w.holdout_n, w.first_token, w.last_token) == (
        n - len(hashed),
        len(hashed),
        "",
        token_of(rows[-1]),
    )
    expected = [{"inputs": dict(e.inputs), "expected": dict(e.expected)} for e in hashed]
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()
    assert w.holdout_digest == hashlib.sha256(canonical).hexdigest() != w.train_digest


def test_the_held_out_share_is_drawn_from_the_whole_window_not_its_tail() -> None:
    """After a drift the newest feedback holds the new kinds: both sides must have some."""
    rows = examples(200)
    s = split(rows, "", 0.3)
    newest = {e.prediction_id for e in rows[140:]}
    assert 45 <= len(s.holdout) <= 75  # about 30% of 200
    assert any(e.prediction_id in newest for e in s.train)
    assert any(e.prediction_id not in newest for e in s.holdout)
    assert split(rows, "", 0.3) == s  # the same split on every read


def test_a_window_keeps_the_most_recent_examples_and_starts_after_the_one_before() -> None:
    rows = examples(MAX_WINDOW + 7)
    s = split(rows, "", 0.3)
    assert s.window.train_n + s.window.holdout_n == MAX_WINDOW
    assert s.train[0].prediction_id == "p7" and s.window.first_token == token_of(rows[6])
