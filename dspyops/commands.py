"""The one writer path: every command of both services goes through `Commands.run`.

A command is the RPC's name, the client's request, and `decide(state) -> Decision`: which
stream, which payloads, which expected version, decided from that one state (or a
DspyopsError naming the field, having appended nothing). `run` then

1. answers a retry: when the request carries a `request_id` that the state's index
   (`State.requests`, folded from `RequestOrigin`) already holds for the same method and
   the same request, it returns the first result and appends nothing; the same id with
   another method or another request is ALREADY_EXISTS naming `request_id`;
2. otherwise decides, puts `origin` (request_id, method, sha256 of the request without its
   request_id) on the batch's LAST event and gives that event an id derived from the
   request_id, and appends with the decided expected version;
3. lets the store settle concurrent duplicates (threads, processes, gateways): the derived
   event id is unique in the log, so of two racers with one request_id exactly one
   appends; the other gets ``deduplicated`` (same stream) or DuplicateEventId (another
   stream, e.g. two StartOptimization with different random job ids) and answers from
   the log like a retry;
4. maps store errors to statuses (ABORTED for a stale expected version, UNAVAILABLE for
   an unwritable log) and retries ABORTED `attempts` times for commands whose decision
   may simply be re-taken (a semver race between registrations).

"The first result" is rendered by the caller from `Outcome.state`, the state right after
the first append (`History.state_at` its origin position), and `Outcome.event`, the batch's
last payload as stored: the first call and every retry see the same state, so they get the
same response, byte for byte.

Who writes which events (stream ownership, see DESIGN.md). Through this path:

    optimizer  StartOptimization   job-<id>            JobAccepted
               ImportProgram       program-<name>      VersionRegistered
               (a job's result)    program-<name>      [VersionStatusChanged demotion,] VersionRegistered
               SetVersionStatus    program-<name>      [VersionStatusChanged demotion,] VersionStatusChanged
               SetAlias            program-<name>      AliasSet
               CreateDeployment    deployment-<name>   DeploymentCreated[, RoutesSet]
               SetRoutes           deployment-<name>   RoutesSet
               SetCapturePolicy    deployment-<name>   CapturePolicySet
    gateway    StartExperiment     deployment-<name>   ExperimentStarted
               ConcludeExperiment  deployment-<name>   ExperimentConcluded
               StopExperiment      deployment-<name>   ExperimentStopped
               Rollback            deployment-<name>   RolledBack
               StartCanary         deployment-<name>   CanaryStarted
               EvaluateCanary and  deployment-<name>   CanaryAdvanced or CanaryEnded (the gateway's
               the canary loop                         own decisions: no request_id)
               SetDriftMonitor     deployment-<name>   DriftMonitorSet
               the drift loop      deployment-<name>   DriftDetected (the gateway's own: no request_id)
               SetEvaluator        deployment-<name>   EvaluatorSet

Outside it (not commands): a job's own progress on job-<id> (JobStarted, BaselineEvaluated,
TrialCompleted, GateEvaluated, JobCompleted/Failed/Cancelled/Interrupted), appended by the
job thread through `Ledger.append`; EvaluationRecorded on program-<name> after Evaluate of a
version (optimizer_svc/evaluation/record.py, decided and appended with the expected version).
RecordOutcome writes no event: outcomes live in the gateway's prediction records file,
which keeps its own request ids (gateway_svc/records.py).
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from dspyops.actor import current_actor
from dspyops.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    shown,
)
from dspyops.eventlog import (
    AppendResult,
    DuplicateEventId,
    EventStore,
    StoreUnavailable,
    WrongExpectedVersion,
)
from dspyops.events import decode, new_event
from dspyops.history import History
from dspyops.limits import check_payload
from dspyops.proto import events_pb2 as pb
from dspyops.scrub import scrub_message
from dspyops.state import RequestEntry, State

MAX_REQUEST_ID_CHARS = 128
# Request-derived event ids are UUIDv5 in this namespace: never equal to a store-made UUIDv7.
_REQUEST_NAMESPACE = uuid.UUID("21791a07-2d03-424b-afae-45eb9045f29f")


def request_event_id(request_id: str) -> str:
    """The event id of a request's origin event: the same on every attempt.

    Derived from the request_id alone, not from (method, request_id): then the store also
    arbitrates between two RPCs racing with one id (the loser is refused with ALREADY_EXISTS),
    where per-method ids would let both append."""
    return str(uuid.uuid5(_REQUEST_NAMESPACE, request_id))


def check_request_id(request_id: str) -> str:
    """A request_id as sent ("" : none), or INVALID_ARGUMENT naming it."""
    if request_id and (
        len(request_id) > MAX_REQUEST_ID_CHARS
        or not request_id.isprintable()
        or request_id != request_id.strip()
    ):
        raise InvalidArgument(
            "request_id",
            f"at most {MAX_REQUEST_ID_CHARS} printable characters without surrounding spaces "
            f"(e.g. a uuid4 hex), got {shown(request_id)}",
        )
    return request_id


def request_origin(method: str, request: Message | None) -> pb.RequestOrigin | None:
    """The request's origin record, or None when it carries no request_id."""
    request_id = check_request_id(getattr(request, "request_id", "") if request is not None else "")
    if not request_id:
        return None
    assert request is not None
    bare = type(request)()
    bare.CopyFrom(request)
    bare.request_id = ""  # type: ignore[attr-defined]
    digest = hashlib.sha256(bare.SerializeToString(deterministic=True)).hexdigest()
    return pb.RequestOrigin(request_id=request_id, method=method, request_sha256=digest)


@dataclass(frozen=True, slots=True)
class Decision:
    """What a command appends: one atomic batch to one stream. No payloads: the state
    already is what was asked (nothing is appended, nothing is recorded for the request)."""

    stream: str = ""
    payloads: Sequence[Message] = ()
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State  # right after the command's batch (a retry: after the first attempt's batch)
    event: Message | None = None  # the batch's last payload, as stored (None: nothing appended)
    appended: AppendResult | None = None  # what this call appended (None: a retry, or nothing)
    replayed: bool = False  # answered from the log: the request was carried out before


Decide = Callable[[State], Decision]


class Commands:
    """The writer path over one store. `current()` is the state a command decides from: the
    optimizer's Ledger folds up to the head first; a gateway takes its replica's state."""

    def __init__(self, store: EventStore, current: Callable[[], State], history: History) -> None:
        self.store = store
        self.current = current
        self.history = history

    def answered(self, method: str, request: Message) -> Outcome | None:
        """The first result, when this request was carried out already (ALREADY_EXISTS when
        its id was used for something else). For commands with costly validation, which a
        retry should not repeat (and that could fail now although the first attempt passed)."""
        origin = request_origin(method, request)
        return None if origin is None else self._prior(self.current(), origin)

    def run(
        self,
        method: str,
        request: Message | None,
        decide: Decide,
        *,
        attempts: int = 1,
        state: State | None = None,
    ) -> Outcome:
        """Decide on `state` (default: `current()`), append, answer. ABORTED decisions are
        re-taken on fresh state up to `attempts` times."""
        origin = request_origin(method, request)
        for attempt in range(attempts):
            if state is None or attempt:
                state = self.current()
            if origin is not None:
                prior = self._prior(state, origin)
                if prior is not None:
                    return prior
            try:
                decision = decide(state)
            except NotFound:
                # what the request names may be newer than this writer's view (registered
                # through the other service a moment ago): refused only if the head lacks it too
                if state.position >= self.store.head():
                    raise
                state = self._at_head()
                decision = decide(state)
            if not decision.payloads:
                return Outcome(state)
            payloads = list(decision.payloads)
            event_ids: list[str | None] = [None] * len(payloads)
            if origin is not None:
                last = type(payloads[-1])()
                last.CopyFrom(payloads[-1])
                last.origin.CopyFrom(origin)  # type: ignore[attr-defined]
                payloads[-1] = last
                event_ids[-1] = request_event_id(origin.request_id)
            try:
                result = append(self.store, decision.stream, payloads, decision.expected_version, event_ids)
            except DuplicateEventId:
                return self._raced(origin)
            except Aborted:
                if origin is not None:
                    prior = self._prior(self._at_head(), origin)
                    if prior is not None:  # a duplicate won the race and moved the stream
                        return prior
                if attempt + 1 >= attempts:
                    raise
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # jitter, so racers spread out
                continue
            if result.deduplicated:
                return self._raced(origin)
            return Outcome(self._after(state, result.last_position), payloads[-1], result)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    # ------------------------------------------------------------------ helpers

    def _prior(self, state: State, origin: pb.RequestOrigin) -> Outcome | None:
        entry = state.requests.get(origin.request_id)
        if entry is None:
            return None
        _check_same(entry, origin)
        then = self.history.state_at(entry.position, near=state)
        stored = self.store.read(after_position=entry.position - 1, limit=1)[0]
        return Outcome(then, decode(stored), None, True)

    def _raced(self, origin: pb.RequestOrigin | None) -> Outcome:
        """Our origin event's id is in the log already: a concurrent duplicate appended
        first. Its entry is in the state at the head."""
        prior = self._prior(self._at_head(), origin) if origin is not None else None
        if prior is None:  # the id belongs to an event that answers no request: never written so
            raise FailedPrecondition("request_id", "an event with this request's id exists already")
        return prior

    def _at_head(self) -> State:
        near = self.current()
        return self.history.state_at(self.store.head(), near=near)

    def _after(self, decided: State, position: int) -> State:
        """The state right after our batch. The writer's own view usually is exactly that
        (a Ledger folds its append); otherwise fold the few events from the decided state."""
        current = self.current()
        if current.position == position:
            self.history.remember(current)  # a retry soon after is answered without a replay
            return current
        near = current if decided.position < current.position <= position else decided
        return self.history.state_at(position, near=near)


def _check_same(entry: RequestEntry, origin: pb.RequestOrigin) -> None:
    if entry.method != origin.method:
        raise AlreadyExists(
            "request_id",
            f"was first used for {entry.method} (log position {entry.position}); "
            "every new request needs a new request_id",
        )
    if entry.request_sha256 != origin.request_sha256:
        raise AlreadyExists(
            "request_id",
            f"was first used for another {entry.method} request (log position {entry.position}): "
            "a retry must resend the same request, a new request needs a new request_id",
        )


def append(
    store: EventStore,
    stream: str,
    payloads: Sequence[Message],
    expected_version: int | None,
    event_ids: Sequence[str | None] | None = None,
) -> AppendResult:
    """Append payload messages, turning store errors into statuses that name the problem
    (DuplicateEventId passes through: the writer path answers it)."""
    for payload in payloads:  # a key pasted into a reason never enters the log
        scrub_message(payload)
    events = [new_event(p, event_ids[i] if event_ids else None) for i, p in enumerate(payloads)]
    for event in events:  # the hard per-event limit, before anything is written
        check_payload(event.type, event.payload)
    try:
        return store.append(stream, events, expected_version, actor=current_actor.get())
    except WrongExpectedVersion as exc:
        raise Aborted(
            "expected_version",
            f"stream {stream} is at version {exc.actual}, not {exc.expected}: re-read and retry",
        ) from None
    except StoreUnavailable as exc:
        raise Unavailable(
            "", f"the log cannot be written (disk full, read-only or failing storage): {exc}"
        ) from None
