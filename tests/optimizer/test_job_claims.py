"""Jobs claimed on a shared log: two JobManagers with different owners on one SQLite log
(each with its own ledger, as two replicas on one PostgreSQL log would have), real jobs on
the offline LM. The claim is an append with an expected version, the owner's appends are
fenced, a cancel reaches the owner through the log, an owner gone silent is taken over
after its lease (JobRetried) or ends Interrupted when its attempts are used up, and a taker
completes a job whose lost owner registered its version already."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dspyops.artifacts import ArtifactStore
from dspyops.client import examples
from dspyops.errors import Aborted, FailedPrecondition
from dspyops.eventlog import EventStore, StoredEvent, open_store
from dspyops.events import decode
from dspyops.ledger import Ledger
from dspyops.lm import LMConfig
from dspyops.names import job_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.jobs import claims
from optimizer_svc.jobs.claims import LeaseLost
from optimizer_svc.jobs.manager import JobManager
from optimizer_svc.jobs.requests import ValidatedJob, validate_start
from optimizer_svc.registry.commands import Registry
from tests.support.harness import ticket_rows, wait_until

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:30], ROWS[30:50]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with open_store(str(tmp_path / "log.db")) as store:
        yield store


@pytest.fixture
def replicas(
    store: EventStore, tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> Iterator[Callable[..., JobManager]]:
    made: list[JobManager] = []

    def replica(owner: str, **options: Any) -> JobManager:
        ledger = Ledger(store)
        manager = JobManager(
            ledger,
            Registry(ledger),
            ArtifactStore(tmp_path / "artifacts"),
            loop,
            owner=owner,
            exclusive=False,  # the other replica is alive
            **options,
        )
        made.append(manager)
        return manager

    yield replica
    for manager in made:
        manager.shutdown(timeout=30)


def request(optimizer: str = "LabeledFewShot", **params: Any) -> opb.StartOptimizationRequest:
    message = opb.StartOptimizationRequest(
        program="tickets",
        spec=pb.ProgramSpec(module="Predict", signature="text -> label"),
        optimizer=optimizer,
        metric="exact_match",
        trainset=examples(TRAIN),
        valset=examples(VAL),
    )
    message.params.update(params or {"k": 4})
    return message


def slow(job: ValidatedJob, latency_ms: int = 50) -> ValidatedJob:
    """The same job on an offline LM answering after `latency_ms` (server-side config)."""
    return replace(job, lm=LMConfig(latency_ms=latency_ms))


def long_job() -> ValidatedJob:
    return slow(
        validate_start(request("BootstrapFewShotWithRandomSearch", num_candidate_programs=16, num_threads=1))
    )


def stream(store: EventStore, job_id: str) -> list[tuple[StoredEvent, Any]]:
    return [(record, decode(record)) for record in store.read_stream(job_stream(job_id))]


def types(store: EventStore, job_id: str) -> list[str]:
    return [record.type.removeprefix("dspyops.v1.") for record in store.read_stream(job_stream(job_id))]


def done(replica: JobManager) -> list[Any]:
    return [j for j in replica.ledger.refresh().jobs.values() if j.state != "queued"]


def freeze(manager: JobManager, kind: str | None = None) -> threading.Event:
    """The replica stops appending, as a process that hangs or died does: its next append of
    the job (of `kind`, or any) waits until the returned event is set, then is made."""
    thaw = threading.Event()
    append, record = manager._append_fenced, manager._record

    def frozen_append(handle: Any, payloads: Any) -> Any:
        thaw.wait()
        return append(handle, payloads)

    def frozen_record(handle: Any, event_kind: str, payload: Any, **kw: Any) -> None:
        if event_kind == kind:
            thaw.wait()
        record(handle, event_kind, payload, **kw)

    if kind is None:
        manager._append_fenced = frozen_append  # type: ignore[method-assign]
    else:
        manager._record = frozen_record  # type: ignore[method-assign,assignment]
    return thaw


def test_of_two_replicas_racing_for_a_queued_job_one_claims_it(
    replicas: Callable[..., JobManager], store: EventStore
) -> None:
    submitter = replicas("submitter", max_running=0)  # no slot: its jobs stay queued
    a, b = replicas("a"), replicas("b")
    for _ in range(6):
        job_id = submitter.submit(submitter.prepare(validate_start(request()))).job_id
        assert submitter.ledger.refresh().jobs[job_id].state == "queued"
        barrier = threading.Barrier(2)
        won: dict[str, bool] = {}

        def take(replica: JobManager, job_id: str, barrier: threading.Barrier, won: dict[str, bool]) -> None:
            replica.ledger.refresh()
            barrier.wait()
            won[replica.owner] = replica.take(job_id)

        threads = [threading.Thread(target=take, args=(r, job_id, barrier, won)) for r in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(won.values()) == [False, True], won
        winner = next(owner for owner, took in won.items() if took)
        claimed = [p for _, p in stream(store, job_id) if isinstance(p, pb.JobClaimed)]
        assert [(c.owner, c.attempt) for c in claimed] == [(winner, 1)]
        assert wait_until(lambda: all(j.state == "succeeded" for j in done(a)), timeout=60)

    # the loser's append itself: a claim decided on the state before the winner's is refused
    job_id = submitter.submit(submitter.prepare(validate_start(request()))).job_id
    before = b.ledger.refresh().jobs[job_id]
    assert a.take(job_id)
    decision = claims.decide(before, store.clock_us(), b.owner)
    assert decision.claims
    with pytest.raises(Aborted):
        b.ledger.append(job_stream(job_id), list(decision.payloads), decision.expected_version)


def test_a_replica_that_lost_the_job_appends_nothing_more(
    replicas: Callable[..., JobManager], store: EventStore
) -> None:
    a, b = replicas("a", max_attempts=2), replicas("b")
    handle = a.submit(long_job())
    assert wait_until(lambda: "BaselineEvaluated" in types(store, handle.job_id), timeout=120)
    # b takes the job over as if a's lease had expired (the log decides, not a's opinion)
    taken = claims.claim(b.ledger, store.clock_us, handle.job_id, b.owner, owners_dead=True)
    assert taken is not None and taken.attempt == 2 and taken.retried
    head = store.head()
    with pytest.raises(LeaseLost):
        a._record(handle, "trial", pb.TrialCompleted(trial=99, score=1.0, best_score=1.0))
    assert store.head() == head  # nothing appended
    # a's job thread stops at its next append, and writes no terminal event of its own
    assert wait_until(lambda: not a.running(), timeout=120)
    assert store.head() == head
    assert types(store, handle.job_id)[-2:] == ["JobRetried", "JobClaimed"]
    summary = a.ledger.refresh().jobs[handle.job_id]
    assert (summary.owner, summary.fence, summary.state) == ("b", taken.fence, "running")


def test_cancel_on_the_replica_that_does_not_run_the_job_stops_it(
    replicas: Callable[..., JobManager], store: EventStore
) -> None:
    a, b = replicas("a"), replicas("b")
    a.keeper.start()
    handle = a.submit(long_job())
    assert wait_until(lambda: "BaselineEvaluated" in types(store, handle.job_id), timeout=120)
    b.cancel(handle.job_id, "stop it, from b")
    assert wait_until(lambda: a.ledger.refresh().jobs[handle.job_id].state == "cancelled", timeout=60)
    records = stream(store, handle.job_id)
    requested = [p for _, p in records if isinstance(p, pb.JobCancelRequested)]
    assert [r.reason for r in requested] == ["stop it, from b"]
    cancelled = records[-1][1]
    claim_version = next(r.version for r, p in records if isinstance(p, pb.JobClaimed))
    assert isinstance(cancelled, pb.JobCancelled) and cancelled.reason == "stop it, from b"
    assert cancelled.fence == claim_version  # appended by the owner, a
    assert handle.done and handle.events[-1].WhichOneof("kind") == "cancelled"


@pytest.mark.parametrize("max_attempts", [2, 1])
def test_a_silent_owner_is_taken_over_after_its_lease_or_ends_interrupted(
    replicas: Callable[..., JobManager], store: EventStore, max_attempts: int
) -> None:
    a = replicas("a", lease_ms=300, max_attempts=max_attempts)
    b = replicas("b", lease_ms=300)
    thaw = freeze(a)  # a claims the job, then appends nothing: its keeper is not even started
    handle = a.submit(validate_start(request()))
    b.keeper.start()
    ended = {"succeeded", "interrupted", "failed", "cancelled"}
    assert wait_until(lambda: b.ledger.refresh().jobs[handle.job_id].state in ended, timeout=60)
    records = stream(store, handle.job_id)
    payloads = [p for _, p in records]
    first_claim = next(r.version for r, p in records if isinstance(p, pb.JobClaimed))
    if max_attempts == 2:
        retried = [p for p in payloads if isinstance(p, pb.JobRetried)]
        assert [(r.attempt, r.lost_owner, r.lost_fence) for r in retried] == [(2, "a", first_claim)]
        assert "lease expired: no event from a since" in retried[0].reason
        claimed = [(p.owner, p.attempt) for p in payloads if isinstance(p, pb.JobClaimed)]
        assert claimed == [("a", 1), ("b", 2)]
        assert b.ledger.state.jobs[handle.job_id].state == "succeeded"
        assert isinstance(payloads[-1], pb.JobCompleted) and payloads[-1].version == "1.0.0"
    else:
        assert types(store, handle.job_id) == ["JobAccepted", "JobClaimed", "JobInterrupted"]
        assert payloads[-1].fence == first_claim
        assert records[-1][0].actor == "system"
    head = store.head()
    thaw.set()  # a wakes up: its pending append (JobStarted) is refused, and it stops
    assert wait_until(lambda: not a.running(), timeout=60)
    assert store.head() == head


def test_a_taker_completes_from_the_version_the_lost_owner_registered(
    replicas: Callable[..., JobManager], store: EventStore
) -> None:
    a = replicas("a", lease_ms=300, max_attempts=2)
    b = replicas("b", lease_ms=300)
    thaw = freeze(a, "completed")  # a dies between registering its version and JobCompleted
    handle = a.submit(validate_start(request()))
    assert wait_until(lambda: "tickets" in a.ledger.refresh().programs, timeout=60)
    b.keeper.start()
    assert wait_until(lambda: b.ledger.refresh().jobs[handle.job_id].state == "succeeded", timeout=60)
    registered = [r for r in store.read(0, 1000) if r.type == "dspyops.v1.VersionRegistered"]
    assert len(registered) == 1  # no second version
    payloads = [p for _, p in stream(store, handle.job_id)]
    assert [type(p).__name__ for p in payloads[-3:]] == ["JobRetried", "JobClaimed", "JobCompleted"]
    completed = payloads[-1]
    assert completed.version == "1.0.0" and completed.usage.lm_calls == 0  # the lost attempt's: unknown
    head = store.head()
    thaw.set()
    assert wait_until(lambda: not a.running(), timeout=60)
    assert store.head() == head  # a's own JobCompleted was refused


def test_jobs_queue_up_to_max_queued_and_a_queued_job_can_be_cancelled(
    replicas: Callable[..., JobManager], store: EventStore
) -> None:
    busy = replicas("busy", max_running=0, max_queued=2)  # no slot: what it accepts waits
    queued = [busy.submit(validate_start(request())).job_id for _ in range(2)]
    with pytest.raises(FailedPrecondition) as refused:
        busy.submit(validate_start(request()))
    assert "2 jobs are queued already" in str(refused.value)
    assert [busy.ledger.refresh().jobs[j].state for j in queued] == ["queued", "queued"]
    # a cancel of a job nobody runs: any replica's keeper ends it, unrun
    busy.cancel(queued[0], "not needed")
    idle = replicas("idle", max_running=0)
    idle.keeper.start()
    assert wait_until(lambda: idle.ledger.refresh().jobs[queued[0]].state == "cancelled", timeout=30)
    assert types(store, queued[0]) == ["JobAccepted", "JobCancelRequested", "JobCancelled"]
    ended = stream(store, queued[0])[-1][1]
    assert ended.reason == "not needed" and ended.fence == 0
    # the other one waits for a replica with a free slot, then runs there
    free = replicas("free")
    free.keeper.start()
    assert wait_until(lambda: free.ledger.refresh().jobs[queued[1]].state == "succeeded", timeout=60)
    claimed = [p for _, p in stream(store, queued[1]) if isinstance(p, pb.JobClaimed)]
    assert [(c.owner, c.attempt) for c in claimed] == [("free", 1)]
