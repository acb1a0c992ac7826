"""The one writer path (dspyops.commands through dspyops.ledger), as unit tests on the
in-memory log store: request ids (retries answered from the log, reuse refused, racing
duplicates settled by the store), expected versions (stale decisions ABORTED, re-taken when
allowed), and store errors as statuses. No server, no file: each test is milliseconds."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from dspyops.commands import Decision, Outcome, request_event_id
from dspyops.errors import Aborted, AlreadyExists, InvalidArgument, NotFound, Unavailable
from dspyops.eventlog import open_store
from dspyops.ledger import Ledger
from dspyops.names import deployment_stream, job_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.state import EMPTY, State


@pytest.fixture
def url() -> str:
    return f"memory:commands-{uuid.uuid4().hex}"


@pytest.fixture
def ledger(url: str) -> Ledger:
    return Ledger(open_store(url))


def _create(name: str, program: str = "triage") -> Callable[[State], Decision]:
    def decide(state: State) -> Decision:
        if name in state.deployments:
            raise AlreadyExists("deployment", f"{name} exists (a retry must not be decided again)")
        return Decision(deployment_stream(name), [pb.DeploymentCreated(deployment=name, program=program)], 0)

    return decide


def create(ledger: Ledger, name: str, request_id: str = "", *, state: State | None = None) -> Outcome:
    request = opb.CreateDeploymentRequest(deployment=name, program="triage", request_id=request_id)
    return ledger.commands.run("CreateDeployment", request, _create(name), state=state)


def set_routes(
    ledger: Ledger, name: str, weight: float, *, state: State | None = None, attempts: int = 1
) -> Outcome:
    def decide(state: State) -> Decision:
        deployment = state.deployments[name]
        routes = [pb.Route(version="1.0.0", weight=weight)]
        return Decision(
            deployment_stream(name), [pb.RoutesSet(deployment=name, routes=routes)], deployment.stream_version
        )

    request = opb.SetRoutesRequest(deployment=name, routes=[pb.Route(version="1.0.0", weight=weight)])
    return ledger.commands.run("SetRoutes", request, decide, state=state, attempts=attempts)


def test_a_retry_is_answered_from_the_log_and_appends_nothing(ledger: Ledger) -> None:
    first = create(ledger, "web", "req-1")
    assert first.appended is not None and not first.replayed
    assert first.state.deployments["web"].program == "triage"
    stored = ledger.store.read()
    assert len(stored) == 1 and stored[0].event_id == request_event_id("req-1")
    again = create(ledger, "web", "req-1")  # deciding again would raise: it is not decided again
    assert again.replayed and again.appended is None
    assert again.event == first.event and again.state.position == first.state.position == 1
    assert isinstance(again.event, pb.DeploymentCreated) and again.event.origin.request_id == "req-1"
    assert ledger.store.head() == 1


def test_a_request_id_is_used_for_one_request_only(ledger: Ledger) -> None:
    create(ledger, "web", "req-1")
    with pytest.raises(AlreadyExists, match="another CreateDeployment request") as other_request:
        create(ledger, "api", "req-1")
    assert other_request.value.field == "request_id"
    request = opb.SetRoutesRequest(deployment="web", request_id="req-1")
    with pytest.raises(AlreadyExists, match="was first used for CreateDeployment"):
        ledger.commands.run("SetRoutes", request, lambda state: Decision())
    assert ledger.store.head() == 1


@pytest.mark.parametrize("bad", ["x" * 129, "line\nbreak", " padded", "tab\t"])
def test_a_bad_request_id_is_refused_before_anything_is_decided(ledger: Ledger, bad: str) -> None:
    with pytest.raises(InvalidArgument, match="request_id") as info:
        create(ledger, "web", bad)
    assert info.value.field == "request_id" and len(str(info.value)) < 300
    assert ledger.store.head() == 0


def test_a_racing_duplicate_is_settled_by_the_store(url: str, ledger: Ledger) -> None:
    """Two writers (here: two ledgers on one log) carry out one request: the second decided
    on a state without the first's event, so only the store's event id can tell."""
    create(ledger, "web", "req-1")
    other = Ledger(open_store(url))
    raced = create(other, "web", "req-1", state=EMPTY)  # same stream: the batch is deduplicated
    assert raced.replayed and raced.state.position == 1
    request = opb.CreateDeploymentRequest(deployment="web", program="triage", request_id="req-1")
    elsewhere = other.commands.run("CreateDeployment", request, _create("web-b"), state=EMPTY)
    assert elsewhere.replayed  # another stream: DuplicateEventId, answered from the log too
    assert ledger.store.head() == 1


def test_a_decision_on_stale_state_is_aborted_and_appends_nothing(ledger: Ledger) -> None:
    create(ledger, "web")
    before = ledger.state
    set_routes(ledger, "web", 1.0)
    with pytest.raises(Aborted, match="is at version 2, not 1") as info:
        set_routes(ledger, "web", 0.5, state=before)
    assert info.value.field == "expected_version"
    assert ledger.store.head() == 2
    # a command that may simply be re-decided takes fresh state on its next attempt
    retried = set_routes(ledger, "web", 0.5, state=before, attempts=2)
    assert retried.appended is not None and retried.state.deployments["web"].stream_version == 3


def test_nothing_to_do_appends_and_records_nothing(ledger: Ledger) -> None:
    request = opb.CreateDeploymentRequest(deployment="web", request_id="req-1")
    outcome = ledger.commands.run("CreateDeployment", request, lambda state: Decision())
    assert outcome.appended is None and outcome.event is None and not outcome.replayed
    assert ledger.store.head() == 0 and not ledger.state.requests
    assert create(ledger, "web", "req-1").appended is not None  # the id was not used up


def test_an_unwritable_log_is_unavailable(url: str, ledger: Ledger) -> None:
    create(ledger, "web")
    readonly = Ledger(open_store(url + "?mode=ro"))
    assert "web" in readonly.state.deployments
    with pytest.raises(Unavailable, match="cannot be written"):
        create(readonly, "api", "req-2")
    assert ledger.store.head() == 1


def test_a_plain_append_moves_the_ledgers_state(ledger: Ledger) -> None:
    stream = job_stream("j1")
    ledger.append(stream, [pb.JobAccepted(job_id="j1", program="triage", optimizer="BootstrapFewShot")], 0)
    assert ledger.state.jobs["j1"].state == "running"
    ledger.append(stream, [pb.JobFailed(error="boom")], 1)
    assert (ledger.state.jobs["j1"].state, ledger.state.jobs["j1"].error) == ("failed", "boom")
    with pytest.raises(Aborted, match="expected_version"):
        ledger.append(stream, [pb.JobFailed(error="again")], 1)
    assert ledger.state.position == 2


def test_a_name_newer_than_the_writers_view_is_looked_up_at_the_head(ledger: Ledger) -> None:
    """A gateway's view may lag a version or deployment the other service created a moment
    ago (the learning demo's import, then StartCanary): NOT_FOUND only if the head lacks it."""
    create(ledger, "web")

    def routes_for(name: str) -> Callable[[State], Decision]:
        def decide(state: State) -> Decision:
            if name not in state.deployments:
                raise NotFound("deployment", f"no deployment {name!r}")
            routes = [pb.Route(version="1.0.0", weight=1.0)]
            payload = pb.RoutesSet(deployment=name, routes=routes)
            return Decision(deployment_stream(name), [payload], state.deployments[name].stream_version)

        return decide

    request = opb.SetRoutesRequest(deployment="web")
    # decided on a view from before the deployment existed
    outcome = ledger.commands.run("SetRoutes", request, routes_for("web"), state=EMPTY)
    assert outcome.appended is not None and ledger.store.head() == 2
    with pytest.raises(NotFound, match="no deployment 'api'"):
        ledger.commands.run("SetRoutes", request, routes_for("api"), state=EMPTY)
    assert ledger.store.head() == 2
