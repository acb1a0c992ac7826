"""EvaluatorSet in the fold: attached, changed and removed by name, ordered by name; the
stream version moves and what serves does not; its origin (RequestOrigin's wire twin) is
indexed like any command's; snapshots keep the evaluators."""

from __future__ import annotations

from dspyops.fold import fold
from dspyops.proto import events_pb2 as pb
from dspyops.snapshots import decode_state, encode_state
from tests.kernel.test_state import stored


def _set(name: str, **fields: object) -> pb.EvaluatorSet:
    evaluator = pb.Evaluator(name=name, share=0.5, metric="exact_match", enabled=True)
    for key, value in fields.items():
        setattr(evaluator, key, value)
    return pb.EvaluatorSet(deployment="web", evaluator=evaluator)


def test_evaluators_are_attached_changed_and_removed_by_name() -> None:
    with_origin = _set("b", share=0.1)
    with_origin.origin.CopyFrom(pb.RequestOrigin(request_id="r1", method="SetEvaluator", request_sha256="h"))
    events = stored(
        [
            pb.DeploymentCreated(deployment="web", program="p"),
            _set("b"),
            _set("a", metric="", judge_program="judge", judge_version="1.0.0", max_calls_per_hour=5),
            with_origin,
            pb.EvaluatorSet(deployment="web", evaluator=pb.Evaluator(name="a")),  # removed
        ]
    )
    state = fold(events[:4])
    web = state.deployments["web"]
    assert [(e.name, e.share, e.set_position) for e in web.evaluators] == [("a", 0.5, 3), ("b", 0.1, 4)]
    assert web.evaluators[0].is_judge and web.evaluators[0].max_calls_per_hour == 5
    assert web.evaluators[1].source == "evaluator:b"
    assert web.stream_version == 4 and web.changed_position == 1  # still its creation: nothing served changed
    assert state.requests["r1"].method == "SetEvaluator" and state.requests["r1"].position == 4
    assert decode_state(encode_state(state)) == state  # snapshots keep them
    removed = fold(events[4:], state)
    assert [e.name for e in removed.deployments["web"].evaluators] == ["b"]
    assert removed.deployments["web"].stream_version == 5


def test_an_evaluator_of_an_unknown_deployment_changes_nothing() -> None:
    state = fold(stored([_set("a")]))
    assert state.deployments == {}
