"""The fold is pure and deterministic: same events, same state, same hash; folding in
pieces equals folding at once; the input state is never mutated."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dspyops.eventlog import StoredEvent
from dspyops.events import new_event
from dspyops.fold import fold, state_hash
from dspyops.proto import events_pb2 as pb
from dspyops.snapshots import decode_state, encode_state
from dspyops.state import EMPTY, VersionState, shared

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PROGRAMS = ["a", "b"]
VERSIONS = ["1.0.0", "1.1.0", "2.0.0"]


def payloads() -> st.SearchStrategy:
    program = st.sampled_from(PROGRAMS)
    version = st.sampled_from(VERSIONS)
    status = st.sampled_from([pb.DEVELOPMENT, pb.STAGING, pb.PRODUCTION, pb.DEPRECATED, pb.ARCHIVED])
    return st.one_of(
        st.builds(
            lambda p, v: pb.VersionRegistered(
                program=p,
                version=v,
                artifact_digest=v * 3,
                spec=pb.ProgramSpec(module="Predict", signature="a -> b"),
            ),
            program,
            version,
        ),
        st.builds(
            lambda p, v, s: pb.VersionStatusChanged(program=p, version=v, status=s), program, version, status
        ),
        st.builds(lambda p, v: pb.AliasSet(program=p, alias="champion", version=v), program, version),
        st.builds(  # a command that answered a client request: the fold indexes its request_id
            lambda p, v, r: pb.AliasSet(
                program=p,
                alias="stable",
                version=v,
                origin=pb.RequestOrigin(request_id=r, method="SetAlias", request_sha256=r * 2),
            ),
            program,
            version,
            st.sampled_from(["r1", "r2"]),
        ),
        st.builds(
            lambda d, p: pb.DeploymentCreated(deployment=d, program=p),
            st.sampled_from(["web", "api"]),
            program,
        ),
        st.builds(
            lambda d, v, w: pb.RoutesSet(deployment=d, routes=[pb.Route(version=v, weight=w)]),
            st.sampled_from(["web", "api"]),
            version,
            st.floats(0, 1),
        ),
        st.builds(
            lambda d, t, f, r: pb.CapturePolicySet(
                deployment=d,
                policy=pb.CapturePolicy(traces=t, inputs_outputs=True, fields=f, retention_days=r),
            ),
            st.sampled_from(["web", "api"]),
            st.booleans(),
            st.lists(st.sampled_from(["a", "b"]), max_size=2),
            st.integers(0, 3650),
        ),
        st.builds(
            lambda d, on, n: pb.DriftMonitorSet(
                deployment=d, monitor=pb.DriftMonitor(enabled=on, reference="window", reference_window=n)
            ),
            st.sampled_from(["web", "api"]),
            st.booleans(),
            st.integers(0, 500),
        ),
        st.builds(
            lambda d, v: pb.DriftDetected(deployment=d, version=v, signal="outcome_rate"),
            st.sampled_from(["web", "api"]),
            version,
        ),
        st.builds(
            lambda d, n, on, share: pb.EvaluatorSet(
                deployment=d,
                evaluator=pb.Evaluator(
                    name=n, share=share, judge_program="judge", judge_version="1.0.0", enabled=on
                ),
            ),
            st.sampled_from(["web", "api"]),
            st.sampled_from(["e1", "e2"]),
            st.booleans(),
            st.floats(0.01, 1),
        ),
        st.builds(
            lambda j: pb.JobAccepted(job_id=j, program="a", optimizer="X"), st.sampled_from(["j1", "j2"])
        ),
        st.builds(lambda s: pb.TrialCompleted(trial=1, score=s, best_score=s), st.floats(0, 1)),
        st.builds(lambda s: pb.JobCompleted(final_score=s, version="1.0.0"), st.floats(0, 1)),
        st.builds(
            lambda c, d: pb.CorpusRegistered(corpus=c, digest=d * 64, documents=b"[]", count=3),
            st.sampled_from(["help", "faq"]),
            st.sampled_from("ab"),
        ),
    )


def stored(messages: list) -> list[StoredEvent]:
    versions: dict[str, int] = {}
    events = []
    for i, message in enumerate(messages, start=1):
        stream = _stream(message)
        versions[stream] = versions.get(stream, 0) + 1
        new = new_event(message)
        events.append(
            StoredEvent(
                position=i,
                stream=stream,
                version=versions[stream],
                event_id=new.event_id,
                type=new.type,
                payload=new.payload,
                recorded_at=T0 + timedelta(seconds=i),
                hash=b"\0" * 32,
            )
        )
    return events


def _stream(message: object) -> str:
    if isinstance(
        message,
        pb.DeploymentCreated
        | pb.RoutesSet
        | pb.CapturePolicySet
        | pb.DriftMonitorSet
        | pb.DriftDetected
        | pb.EvaluatorSet,
    ):
        return f"deployment-{message.deployment}"
    if isinstance(message, pb.JobAccepted):
        return f"job-{message.job_id}"
    if isinstance(message, pb.TrialCompleted | pb.JobCompleted):
        return "job-j1"
    if isinstance(message, pb.CorpusRegistered):
        return f"corpus-{message.corpus}"
    return f"program-{message.program}"  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None)
@given(st.lists(payloads(), max_size=40), st.integers(0, 40))
def test_fold_in_pieces_equals_fold_at_once(messages: list, cut: int) -> None:
    events = stored(messages)
    whole = fold(events)
    prefix = fold(events[:cut])
    snapshot = copy.deepcopy(prefix)
    rest = fold(events[cut:], prefix)
    assert rest == whole
    assert state_hash(rest) == state_hash(whole)
    assert prefix == snapshot, "fold mutated the state it was given"
    assert whole.position == len(events)


def test_registry_and_routes_are_folded() -> None:
    events = stored(
        [
            pb.VersionRegistered(program="a", version="1.0.0", status=pb.PRODUCTION, artifact_digest="d1"),
            pb.VersionRegistered(program="a", version="1.1.0", artifact_digest="d2"),
            pb.AliasSet(program="a", alias="champion", version="1.1.0"),
            pb.DeploymentCreated(deployment="web", program="a"),
            pb.RoutesSet(
                deployment="web",
                routes=[
                    pb.Route(version="1.0.0", weight=0.9),
                    pb.Route(version="1.1.0", weight=0.1, role=pb.SHADOW),
                ],
            ),
        ]
    )
    state = fold(events)
    program = state.programs["a"]
    assert program.production_version == "1.0.0"
    assert program.resolve("@champion").artifact_digest == "d2"
    web = state.deployments["web"]
    assert [(r.version, r.weight, r.role) for r in web.routes] == [
        ("1.0.0", 0.9, "primary"),
        ("1.1.0", 0.1, "shadow"),
    ]
    assert web.stream_version == 2 and web.changed_position == 5
    assert state_hash(state) != state_hash(fold(events[:-1]))
    assert fold([]) == EMPTY


def test_versions_with_an_equal_spec_and_lm_share_one_object_each_after_a_fold_and_a_snapshot() -> None:
    """Memory per registered version (issue 17, goal 5): a program's versions mostly have one
    spec and one LM config, and the state holds each once; a version that differs keeps its own."""
    spec = pb.ProgramSpec(module="Predict", signature="text -> label")
    lm = pb.LMConfig(model="offline/nearest-demo", max_tokens=512)
    other_lm = pb.LMConfig(model="offline/nearest-demo", max_tokens=256)
    events = stored(
        [
            pb.VersionRegistered(program="a", version="1.0.0", spec=spec, lm=lm, artifact_digest="d1"),
            pb.VersionRegistered(program="a", version="1.1.0", spec=spec, lm=lm, artifact_digest="d2"),
            pb.VersionRegistered(program="a", version="1.2.0", spec=spec, lm=other_lm, artifact_digest="d3"),
        ]
    )
    for state in (fold(events), decode_state(encode_state(fold(events)))):
        v1, v2, v3 = state.programs["a"].versions.values()
        assert v1.spec is v2.spec is v3.spec and v1.lm is v2.lm
        assert v3.lm is not v2.lm and v3.lm == {"model": "offline/nearest-demo", "max_tokens": 256}
        assert v2.lm == {"model": "offline/nearest-demo", "max_tokens": 512}
    assert state_hash(fold(events)) == state_hash(fold(events[:2] + events[2:]))


def test_only_values_of_the_same_types_are_shared() -> None:
    # 1.0 == True in Python, but the state's JSON (and its hash) tells them apart
    previous = VersionState("a", "1.0.0", {"x": "y"}, {"n": 1.0, "l": [1, 2]}, "d", "development", {}, 1, 0)
    assert shared({"n": 1.0, "l": [1, 2]}, previous, "lm") is previous.lm
    assert shared({"n": True, "l": [1, 2]}, previous, "lm") == {"n": True, "l": [1, 2]}
    assert shared({"n": True, "l": [1, 2]}, previous, "lm") is not previous.lm
    assert shared({"n": 1.0, "l": [1, 2.0]}, previous, "lm") is not previous.lm
    assert shared({"n": 1.0}, None, "lm") == {"n": 1.0}


def test_corpora_are_folded_by_name_and_by_digest() -> None:
    """A re-registration moves the name; the first digest stays resolvable at its own event;
    the same documents under a second name keep their first event as their home."""
    first, second = "a" * 64, "b" * 64
    events = stored(
        [
            pb.CorpusRegistered(corpus="help", digest=first, documents=b"[1]", count=2),
            pb.CorpusRegistered(corpus="help", digest=second, documents=b"[2]", count=5),
            pb.CorpusRegistered(corpus="faq", digest=first, documents=b"[1]", count=2),
        ]
    )
    state = fold(events)
    assert {
        name: (c.digest, c.count, c.registered_position, c.stream_version)
        for name, c in state.corpora.items()
    } == {
        "help": (second, 5, 2, 2),
        "faq": (first, 2, 3, 1),
    }
    assert {d: (c.count, c.corpus, c.position, c.names) for d, c in state.corpus_contents.items()} == {
        first: (2, "help", 1, ("help", "faq")),  # every name that pointed at it, first first
        second: (5, "help", 2, ("help",)),
    }
    assert decode_state(encode_state(state)) == state  # snapshots keep the names as a tuple
    assert state_hash(state) != state_hash(fold(events[:-1]))
