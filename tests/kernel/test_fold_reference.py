"""The fast fold (a mutable builder per call, frozen once) means exactly what the plain
one-event-at-a-time fold means: same state, same version order, same hash, for any events
of every kind the fold handles, folded at once or in pages of any size; and the state it
is given is never mutated."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dspyops.eventlog import StoredEvent
from dspyops.events import UnknownEventType, new_event
from dspyops.fold import fold, state_hash
from dspyops.proto import events_pb2 as pb
from dspyops.snapshots import decode_state, encode_state
from dspyops.state import EMPTY, State
from tests.support.reference_fold import reference_fold

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PROGRAMS = ["a", "b"]
VERSIONS = ["1.0.0", "1.1.0", "2.0.0"]
DEPLOYMENTS = ["web", "api", "ghost"]  # "ghost" is never created: its events must be ignored
JOBS = ["j1", "j2", "j3"]  # "j3" is never accepted


def _routes() -> st.SearchStrategy:
    route = st.builds(
        lambda v, w, r: pb.Route(version=v, weight=w, role=r),
        st.sampled_from(VERSIONS),
        st.floats(0, 1),
        st.sampled_from([pb.ROUTE_ROLE_UNSPECIFIED, pb.PRIMARY, pb.SHADOW]),
    )
    return st.lists(route, max_size=3)


def _experiment() -> st.SearchStrategy:
    return st.builds(
        lambda i, s: pb.Experiment(
            experiment_id=i,
            control="1.0.0",
            treatments=["1.1.0"],
            weights=[0.5, 0.5],
            metric=pb.CONTINUOUS,
            alpha=0.05,
            min_samples_per_arm=10,
            hash_version=2,
            seed=s,
            coverage=1.0,
        ),
        st.sampled_from(["e1", "e2"]),
        st.text(max_size=3),
    )


def _canary() -> st.SearchStrategy:
    return st.builds(
        lambda i, step: pb.Canary(
            canary_id=i, baseline="1.0.0", candidate="1.1.0", steps=[5, 50, 100], step=step, alpha=0.05
        ),
        st.sampled_from(["c1", "c2"]),
        st.integers(0, 2),
    )


def _payloads() -> st.SearchStrategy:
    """(stream, payload) pairs covering every handler, including events naming things that
    do not exist (the fold must ignore those, not fail)."""
    program = st.sampled_from([*PROGRAMS, "nope"])
    version = st.sampled_from([*VERSIONS, "9.9.9"])
    deployment = st.sampled_from(DEPLOYMENTS)
    job = st.sampled_from(JOBS)
    fence = st.sampled_from([0, 0, 1, 2, 3, 4])
    status = st.sampled_from([pb.DEVELOPMENT, pb.STAGING, pb.PRODUCTION, pb.DEPRECATED, pb.ARCHIVED])
    score = st.floats(0, 1)

    def on_program(p: str, message: object) -> tuple[str, object]:
        return f"program-{p}", message

    def on_deployment(d: str, message: object) -> tuple[str, object]:
        return f"deployment-{d}", message

    events = st.one_of(
        st.builds(
            lambda p, v, s, d: on_program(
                p,
                pb.VersionRegistered(
                    program=p,
                    version=v,
                    status=s,
                    artifact_digest=d,
                    spec=pb.ProgramSpec(module="Predict", signature="a -> b"),
                    lm=pb.LMConfig(model="offline", temperature=0.5),
                ),
            ),
            st.sampled_from(PROGRAMS),
            version,
            status,
            st.text(max_size=4),
        ),
        st.builds(
            lambda p, v, s: on_program(p, pb.VersionStatusChanged(program=p, version=v, status=s)),
            program,
            version,
            status,
        ),
        st.builds(
            lambda p, a, v: on_program(p, pb.AliasSet(program=p, alias=a, version=v)),
            program,
            st.sampled_from(["champion", "stable"]),
            version,
        ),
        st.builds(
            lambda p, v, s: on_program(
                p,
                pb.EvaluationRecorded(
                    program=p, version=v, report=pb.EvaluationReport(metric="exact", score=s, examples=3)
                ),
            ),
            program,
            version,
            score,
        ),
        st.builds(
            lambda d, p: on_deployment(d, pb.DeploymentCreated(deployment=d, program=p)),
            st.sampled_from(["web", "api"]),
            st.sampled_from(PROGRAMS),
        ),
        st.builds(lambda d, r: on_deployment(d, pb.RoutesSet(deployment=d, routes=r)), deployment, _routes()),
        st.builds(
            lambda d, e: on_deployment(d, pb.ExperimentStarted(deployment=d, experiment=e)),
            deployment,
            _experiment(),
        ),
        st.builds(
            lambda d, r: on_deployment(d, pb.ExperimentConcluded(deployment=d, routes=r)),
            deployment,
            _routes(),
        ),
        st.builds(lambda d: on_deployment(d, pb.ExperimentStopped(deployment=d)), deployment),
        st.builds(
            lambda d, r, e, c: on_deployment(
                d,
                pb.RolledBack(
                    deployment=d, routes=r, **({"experiment": e} if e else {}), **({"canary": c} if c else {})
                ),
            ),
            deployment,
            _routes(),
            st.none() | _experiment(),
            st.none() | _canary(),
        ),
        st.builds(
            lambda d, c: on_deployment(d, pb.CanaryStarted(deployment=d, canary=c)), deployment, _canary()
        ),
        st.builds(
            lambda d, i, s: on_deployment(d, pb.CanaryAdvanced(deployment=d, canary_id=i, step=s)),
            deployment,
            st.sampled_from(["c1", "c2"]),
            st.integers(0, 2),
        ),
        st.builds(
            lambda d, r: on_deployment(d, pb.CanaryEnded(deployment=d, routes=r)), deployment, _routes()
        ),
        st.builds(
            lambda d, t, f, r: on_deployment(
                d,
                pb.CapturePolicySet(
                    deployment=d,
                    policy=pb.CapturePolicy(traces=t, inputs_outputs=not t, fields=f, retention_days=r),
                ),
            ),
            deployment,
            st.booleans(),
            st.lists(st.sampled_from(["text", "label"]), max_size=2),
            st.integers(0, 3650),
        ),
        st.builds(
            lambda d, on, ref, n: on_deployment(
                d,
                pb.DriftMonitorSet(
                    deployment=d,
                    monitor=pb.DriftMonitor(enabled=on, alpha=0.05, reference=ref, reference_window=n),
                ),
            ),
            deployment,
            st.sampled_from([True, True, False]),
            st.sampled_from(["offline", "window"]),
            st.integers(0, 500),
        ),
        st.builds(
            lambda d, v, s, x: on_deployment(
                d,
                pb.DriftDetected(
                    deployment=d, version=v, signal=s, statistics=pb.DriftSignal(signal=s, value=x, n=7)
                ),
            ),
            deployment,
            st.sampled_from(VERSIONS),
            st.sampled_from(["outcome_rate", "error_rate"]),
            st.floats(0, 1),
        ),
        st.builds(
            lambda d, n, on, share: on_deployment(
                d,
                pb.EvaluatorSet(
                    deployment=d,
                    evaluator=pb.Evaluator(name=n, share=share, metric="exact_match", enabled=on),
                ),
            ),
            deployment,
            st.sampled_from(["e1", "e2"]),
            st.sampled_from([True, True, False]),
            st.sampled_from([0.1, 1.0]),
        ),
        st.builds(
            lambda d, on, paused, n: on_deployment(
                d,
                pb.LearningPolicySet(
                    deployment=d,
                    policy=pb.LearningPolicy(optimizer="BootstrapFewShot", min_new_examples=n),
                    enabled=on,
                    paused=paused,
                ),
            ),
            deployment,
            st.booleans(),
            st.booleans(),
            st.integers(0, 50),
        ),
        st.builds(
            lambda d, r, v: on_deployment(
                d,
                pb.LearningTriggered(
                    deployment=d,
                    run_id=r,
                    trigger="drift",
                    serving_version=v,
                    request_id=f"learn-{r}",
                    feedback=pb.FeedbackWindow(last_token=f"7/{r}"),
                ),
            ),
            deployment,
            st.sampled_from(["run-1", "run-2"]),
            st.sampled_from(VERSIONS),
        ),
        st.builds(
            lambda d, r, result: on_deployment(
                d, pb.LearningRunEnded(deployment=d, run_id=r, result=result, job_id="j1")
            ),
            deployment,
            st.sampled_from(["run-1", "run-2"]),
            st.sampled_from(["gate_failed", "canary_started"]),
        ),
        st.builds(
            lambda j, m, ms: (
                f"job-{j}",
                pb.JobAccepted(job_id=j, program="a", optimizer="X", max_attempts=m, lease_ms=ms),
            ),
            st.sampled_from(["j1", "j2"]),
            st.sampled_from([0, 0, 1, 3]),  # 0: a log from before claims
            st.sampled_from([0, 500, 15_000]),
        ),
        # fences 0..4: the job streams are short, so some match the current claim's version
        st.builds(
            lambda j, o, a: (f"job-{j}", pb.JobClaimed(owner=o, attempt=a)),
            job,
            st.sampled_from("ab"),
            st.integers(1, 3),
        ),
        st.builds(
            lambda j, a, f: (f"job-{j}", pb.JobRetried(attempt=a, lost_fence=f)),
            job,
            st.integers(2, 3),
            fence,
        ),
        st.builds(lambda j, f: (f"job-{j}", pb.JobLeaseRenewed(fence=f)), job, fence),
        st.builds(lambda j, f: (f"job-{j}", pb.JobLeaseReleased(reason="stop", fence=f)), job, fence),
        st.builds(lambda j: (f"job-{j}", pb.JobCancelRequested(reason="user")), job),
        st.builds(lambda j, f: (f"job-{j}", pb.JobStarted(optimizer="X", fence=f)), job, fence),
        st.builds(lambda j, f: (f"job-{j}", pb.GateEvaluated(passed=True, fence=f)), job, fence),
        st.builds(lambda j, s, f: (f"job-{j}", pb.BaselineEvaluated(score=s, fence=f)), job, score, fence),
        st.builds(
            lambda j, s, f: (f"job-{j}", pb.TrialCompleted(trial=1, score=s, best_score=s, fence=f)),
            job,
            score,
            fence,
        ),
        st.builds(lambda j: (f"job-{j}", pb.JobProgress(step=1)), job),  # not folded, position moves
        st.builds(
            lambda j, s, f: (f"job-{j}", pb.JobCompleted(final_score=s, version="1.0.0", fence=f)),
            job,
            score,
            fence,
        ),
        st.builds(lambda j, f: (f"job-{j}", pb.JobFailed(error="boom", fence=f)), job, fence),
        st.builds(lambda j, f: (f"job-{j}", pb.JobCancelled(reason="user", fence=f)), job, fence),
        st.builds(lambda j, f: (f"job-{j}", pb.JobInterrupted(reason="restart", fence=f)), job, fence),
        # a name moves between digests (some shared by two names); a digest keeps its first event
        st.builds(
            lambda c, d: (
                f"corpus-{c}",
                pb.CorpusRegistered(corpus=c, digest=d * 64, documents=b"[]", count=len(c) + ord(d)),
            ),
            st.sampled_from(["help", "faq"]),
            st.sampled_from("abc"),
        ),
    )
    # command events may answer a client request (a few ids, so some repeat: the first wins)
    return st.builds(_with_origin, events, st.none() | st.sampled_from(["r1", "r2", "r3"]), st.booleans())


def _with_origin(item: tuple[str, object], request_id: str | None, other_method: bool) -> tuple[str, object]:
    stream, message = item
    if request_id is not None and "origin" in message.DESCRIPTOR.fields_by_name:  # type: ignore[attr-defined]
        method = "SetAlias" if other_method else type(message).__name__
        origin = pb.RequestOrigin(
            request_id=request_id, method=method, request_sha256=f"{request_id}{method}"
        )
        message.origin.CopyFrom(origin)  # type: ignore[attr-defined]
    return stream, message


# Every program, version, deployment, job and canary the random events name exists first
# (except the deliberately unknown ones), so most random events change something.
SETUP: list[tuple[str, object]] = [
    *(
        (f"program-{p}", pb.VersionRegistered(program=p, version=v, artifact_digest=f"{p}{v}"))
        for p in PROGRAMS
        for v in VERSIONS
    ),
    *((f"deployment-{d}", pb.DeploymentCreated(deployment=d, program="a")) for d in ("web", "api")),
    ("deployment-web", pb.CanaryStarted(deployment="web", canary=pb.Canary(canary_id="c1", steps=[5, 100]))),
    *((f"job-{j}", pb.JobAccepted(job_id=j, program="a", optimizer="X")) for j in ("j1", "j2")),
]


def _stored(items: list[tuple[str, object]]) -> list[StoredEvent]:
    versions: dict[str, int] = {}
    events = []
    for i, (stream, message) in enumerate([*SETUP, *items], start=1):
        versions[stream] = versions.get(stream, 0) + 1
        new = new_event(message)  # type: ignore[arg-type]
        events.append(
            StoredEvent(
                position=i,
                stream=stream,
                version=versions[stream],
                event_id=new.event_id,
                type=new.type,
                payload=new.payload,
                recorded_at=T0 + timedelta(milliseconds=7 * i),
                hash=b"\0" * 32,
            )
        )
    return events


def _same(fast: State, reference: State) -> None:
    assert fast == reference
    assert state_hash(fast) == state_hash(reference)
    for name, program in reference.programs.items():
        # registration order is meaningful (production_version takes the first match)
        assert list(fast.programs[name].versions) == list(program.versions)


@settings(max_examples=300, deadline=None)
@given(st.lists(_payloads(), min_size=5, max_size=80), st.lists(st.integers(1, 60), max_size=6))
def test_fast_fold_equals_the_reference_fold_in_any_pages(items: list, page_sizes: list[int]) -> None:
    events = _stored(items)
    reference = reference_fold(events)
    _same(fold(events), reference)

    state, start = EMPTY, 0
    for size in [*page_sizes, len(events)]:
        page, given_state = events[start : start + size], state
        before = copy.deepcopy(given_state)
        state = fold(page, given_state)
        assert given_state == before, "fold mutated the state it was given"
        start += len(page)
    _same(state, reference)
    assert decode_state(encode_state(state)) == state  # every kind of state survives a snapshot


@settings(max_examples=150, deadline=None)
@given(st.lists(_payloads(), min_size=5, max_size=60), st.integers(0, 70))
def test_fold_never_mutates_the_state_it_is_given(items: list, cut: int) -> None:
    events = _stored(items)
    prefix = fold(events[:cut])
    frozen = copy.deepcopy(prefix)
    prefix_hash = state_hash(prefix)
    fold(events[cut:], prefix)
    assert prefix == frozen
    assert state_hash(prefix) == prefix_hash
    for name, program in frozen.programs.items():
        assert list(prefix.programs[name].versions) == list(program.versions)


def test_positions_must_move_forward_and_unknown_types_are_refused() -> None:
    events = _stored([])
    state = fold(events)
    with pytest.raises(ValueError, match="not after"):
        fold(events[1:], state)
    unknown = StoredEvent(
        position=len(events) + 1,
        stream="x",
        version=1,
        event_id="e",
        type="dspyops.v1.NoSuchThing",
        payload=b"",
        recorded_at=T0,
        hash=b"\0" * 32,
    )
    with pytest.raises(UnknownEventType):
        fold([unknown], state)
    assert fold([], state) is state
