"""Job claims in the fold (docs/design.md, "Scale out"): a job with max_attempts is queued until a
JobClaimed, whose stream version is the job's fencing token; events carrying another fence
(a shut-out owner's) leave the state alone; the owner's events renew the lease on the log's
clock; a retry starts its attempt from nothing; a release queues the job again. Old logs
(max_attempts 0, fence 0) fold as they always did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message

from dspyops.eventlog import StoredEvent
from dspyops.events import new_event
from dspyops.fold import fold
from dspyops.proto import events_pb2 as pb
from dspyops.state import EMPTY, JobSummary, State
from tests.support.reference_fold import reference_fold

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STREAM = "job-j1"


def _events(payloads: list[tuple[Message, float]]) -> list[StoredEvent]:
    """(payload, seconds after T0) on one job stream, positions and versions 1, 2, ..."""
    events = []
    for i, (payload, seconds) in enumerate(payloads, start=1):
        new = new_event(payload)
        events.append(
            StoredEvent(
                position=i,
                stream=STREAM,
                version=i,
                event_id=new.event_id,
                type=new.type,
                payload=new.payload,
                recorded_at=T0 + timedelta(seconds=seconds),
                hash=b"",
            )
        )
    return events


def _job(payloads: list[tuple[Message, float]]) -> JobSummary:
    events = _events(payloads)
    state: State = fold(events, EMPTY)
    assert state == reference_fold(events, EMPTY)  # the reference means the same
    return state.jobs["j1"]


def _us(seconds: float) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1_000_000)


ACCEPTED = pb.JobAccepted(job_id="j1", program="p", optimizer="X", max_attempts=2, lease_ms=10_000)


def test_a_claimed_job_is_queued_until_claimed_and_fenced_by_the_claims_version() -> None:
    queued = _job([(ACCEPTED, 0)])
    assert (queued.state, queued.owner, queued.fence, queued.stream_version) == ("queued", "", 0, 1)

    claimed = _job([(ACCEPTED, 0), (pb.JobClaimed(owner="a", attempt=1), 1)])
    assert (claimed.state, claimed.owner, claimed.fence, claimed.attempt) == ("running", "a", 2, 1)
    assert claimed.lease_until_us == _us(1 + 10)


def test_the_owners_events_renew_the_lease_and_a_stale_fence_changes_nothing() -> None:
    base = [(ACCEPTED, 0), (pb.JobClaimed(owner="a", attempt=1), 1)]
    owner = _job([*base, (pb.BaselineEvaluated(score=0.5, fence=2), 4), (pb.JobLeaseRenewed(fence=2), 7)])
    assert owner.baseline_score == 0.5
    assert owner.lease_until_us == _us(7 + 10)
    assert owner.stream_version == 4

    stale = _job(
        [*base, (pb.BaselineEvaluated(score=0.5, fence=1), 4), (pb.JobCompleted(version="1.0.0"), 5)]
    )
    assert (stale.baseline_score, stale.state, stale.version) == (0.0, "running", "")  # fence 1, then 0
    assert stale.lease_until_us == _us(1 + 10)  # not renewed by writes that do not count
    assert stale.stream_version == 4  # but a claimer must append after them


def test_a_retry_takes_the_job_over_and_shuts_the_lost_owner_out() -> None:
    job = _job(
        [
            (ACCEPTED, 0),
            (pb.JobClaimed(owner="a", attempt=1), 1),
            (pb.TrialCompleted(trial=1, score=0.4, best_score=0.4, fence=2), 2),
            (pb.JobRetried(attempt=2, lost_fence=2, lost_owner="a"), 20),
            (pb.JobClaimed(owner="b", attempt=2), 20),
            (pb.TrialCompleted(trial=1, score=0.9, best_score=0.9, fence=2), 21),  # a, too late
            (pb.JobCompleted(version="1.0.0", final_score=0.6, fence=2), 22),  # a, too late
        ]
    )
    assert (job.owner, job.fence, job.attempt, job.state) == ("b", 5, 2, "running")
    assert (job.trials, job.best_score, job.version) == (0, 0.0, "")

    done = _job(
        [
            (ACCEPTED, 0),
            (pb.JobClaimed(owner="a", attempt=1), 1),
            (pb.JobRetried(attempt=2, lost_fence=2, lost_owner="a"), 20),
            (pb.JobClaimed(owner="b", attempt=2), 20),
            (pb.JobCompleted(version="1.0.0", final_score=0.6, fence=4), 30),
            (pb.JobClaimed(owner="c", attempt=3), 40),  # an ended job is nobody's to claim
        ]
    )
    assert (done.state, done.version, done.owner, done.fence) == ("succeeded", "1.0.0", "", 4)


def test_a_release_queues_the_job_and_cancel_requests_are_kept_for_the_owner() -> None:
    base = [(ACCEPTED, 0), (pb.JobClaimed(owner="a", attempt=1), 1)]
    released = _job([*base, (pb.JobLeaseReleased(reason="shutdown", fence=2), 3)])
    assert (released.state, released.owner, released.fence, released.attempt) == ("queued", "", 2, 1)
    # nobody owns it now: the released owner's fence no longer counts, fence 0 does
    after = _job(
        [
            *base,
            (pb.JobLeaseReleased(fence=2), 3),
            (pb.JobFailed(error="late", fence=2), 4),
            (pb.JobCancelRequested(reason="user"), 5),
        ]
    )
    assert (after.state, after.error, after.cancel_requested) == ("queued", "", "user")
    cancelled = _job([*base, (pb.JobLeaseReleased(fence=2), 3), (pb.JobCancelled(reason="user"), 4)])
    assert cancelled.state == "cancelled"


def test_jobs_of_logs_from_before_claims_fold_as_before() -> None:
    old = pb.JobAccepted(job_id="j1", program="p", optimizer="X")
    running = _job([(old, 0), (pb.JobClaimed(owner="a", attempt=1), 1)])  # not claimable
    assert (running.state, running.owner, running.fence) == ("running", "", 0)
    done = _job([(old, 0), (pb.BaselineEvaluated(score=0.3), 1), (pb.JobCompleted(version="1.0.0"), 2)])
    assert (done.state, done.baseline_score, done.version, done.lease_until_us) == (
        "succeeded",
        0.3,
        "1.0.0",
        0,
    )
