"""Who runs a job: a claim on the job's own stream, with the log as the only referee.

A replica owns a job by appending ``JobClaimed`` to ``job-<id>`` with the stream version it
read as the expected version; two replicas racing for one job cannot both succeed
(optimistic concurrency), so at most one runs it. The claim's own stream version is the
job's **fencing token**: every later event of the owner carries it (``fence``) and is
appended expecting the version of the owner's last append (optimizer_svc.jobs.manager
``_record``), so once anybody else appends a claim the old owner's next append fails and it
learns it lost the job (``LeaseLost``). The lease ends ``lease_ms`` after the owner's last
event by the log's clock (``recorded_at``; "now" is asked of the same clock), and a job
whose lease ended is taken over with ``[JobRetried, JobClaimed]`` in one append, or ended
``JobInterrupted`` when its attempts are used up.

``decide`` is the pure part (a job's summary and the log's time in, what to append out);
``claim`` makes that one append. Both read only the fold (dspyops.fold), which keeps the
claim fields of ``JobSummary``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import Message

from dspyops.actor import SYSTEM, acting_as
from dspyops.errors import Aborted
from dspyops.eventlog import AppendResult
from dspyops.ledger import Ledger
from dspyops.names import job_stream
from dspyops.proto import events_pb2 as pb
from dspyops.state import JobSummary


class LeaseLost(Exception):
    """This replica no longer owns the job: another one claimed it (its lease had expired),
    or the log could not be reached for long enough that another one may have. Nothing more
    of this replica's is appended to the job."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(job_id, reason)
        self.job_id = job_id
        self.reason = reason

    def __str__(self) -> str:
        return f"job {self.job_id}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Claim:
    job_id: str
    fence: int  # the JobClaimed's stream version: the token every later event carries
    stream_version: int  # the stream's version after the claim: the owner's next expected version
    attempt: int
    retried: bool  # the claim took the job over from an owner that lost it


@dataclass(frozen=True, slots=True)
class Decision:
    """One append to the job's stream at `expected_version` (no payloads: nothing to do)."""

    payloads: tuple[Message, ...] = ()
    expected_version: int = 0
    attempt: int = 0

    @property
    def claims(self) -> bool:
        return bool(self.payloads) and isinstance(self.payloads[-1], pb.JobClaimed)


NOTHING = Decision()


def new_owner_id() -> str:
    """A replica's name on its claims: new for every process (and every JobManager), so a
    restarted replica never mistakes its predecessor's claims for its own."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def lease_expired(job: JobSummary, now_us: int) -> bool:
    return now_us > job.lease_until_us


def claimable(job: JobSummary, now_us: int, owner: str, *, owners_dead: bool = False) -> bool:
    """Whether `owner` may claim the job now: it is claimed at all (not a log's from before
    claims), queued, or running under a lease that has ended (`owners_dead`: every owner but
    `owner` is known to be gone, as on a file log whose writer lock this process holds)."""
    if job.max_attempts == 0:
        return False
    if job.state == "queued":
        return True
    if job.state != "running" or job.owner == owner:
        return False
    return owners_dead or lease_expired(job, now_us)


def decide(job: JobSummary, now_us: int, owner: str, *, owners_dead: bool = False) -> Decision:
    """What `owner` appends to take the job (or to end it, when its owner is gone and its
    attempts are used up); NOTHING when the job is not claimable now."""
    if not claimable(job, now_us, owner, owners_dead=owners_dead):
        return NOTHING
    if job.cancel_requested:
        # asked to stop while nobody ran it (queued, or its owner gone): it ends here, unrun
        fence = 0 if job.state == "queued" else job.fence
        cancelled = pb.JobCancelled(reason=job.cancel_requested, fence=fence)
        return Decision((cancelled,), job.stream_version)
    if job.state == "queued":
        # a job never claimed starts attempt 1; a released one keeps its attempt: a graceful
        # restart of its replica costs it none
        attempt = max(job.attempt, 1)
        return Decision((pb.JobClaimed(owner=owner, attempt=attempt),), job.stream_version, attempt)
    since = _since(job)
    if job.attempt >= job.max_attempts:
        reason = (
            f"lease expired after {job.attempt} of {job.max_attempts} attempts: "
            f"no event from {job.owner} since {since}"
        )
        return Decision((pb.JobInterrupted(reason=reason, fence=job.fence),), job.stream_version)
    attempt = job.attempt + 1
    retried = pb.JobRetried(
        attempt=attempt,
        lost_fence=job.fence,
        lost_owner=job.owner,
        reason=f"lease expired: no event from {job.owner} since {since}",
    )
    return Decision((retried, pb.JobClaimed(owner=owner, attempt=attempt)), job.stream_version, attempt)


def claim(
    ledger: Ledger, clock_us: Callable[[], int], job_id: str, owner: str, *, owners_dead: bool = False
) -> Claim | None:
    """Take the job for `owner` if it is claimable: the Claim, or None when it is not (it
    runs under a live lease, has ended, or another replica appended first). A job that
    nothing may run again (its attempts used up, or asked to stop) is ended instead, and
    None returned. Appended as the system: the job's own events keep their submitter."""
    job = ledger.refresh().jobs.get(job_id)
    if job is None:
        return None
    decision = decide(job, clock_us(), owner, owners_dead=owners_dead)
    result = _append(ledger, job_id, decision)
    if result is None or not decision.claims:
        return None
    return Claim(
        job_id=job_id,
        fence=result.stream_version,
        stream_version=result.stream_version,
        attempt=decision.attempt,
        retried=len(decision.payloads) > 1,
    )


def end(
    ledger: Ledger, clock_us: Callable[[], int], job_id: str, owner: str, *, owners_dead: bool = False
) -> str:
    """End the job if nothing may run it again (no slot needed for that); the state it
    ended in ("interrupted" or "cancelled"), or "" when it was not to be ended now."""
    job = ledger.refresh().jobs.get(job_id)
    if job is None:
        return ""
    decision = decide(job, clock_us(), owner, owners_dead=owners_dead)
    if not decision.payloads or decision.claims or _append(ledger, job_id, decision) is None:
        return ""
    return "interrupted" if isinstance(decision.payloads[-1], pb.JobInterrupted) else "cancelled"


def _append(ledger: Ledger, job_id: str, decision: Decision) -> AppendResult | None:
    if not decision.payloads:
        return None
    try:
        with acting_as(SYSTEM):
            return ledger.append(job_stream(job_id), list(decision.payloads), decision.expected_version)
    except Aborted:  # another taker, the owner renewing, a cancel request: decide again later
        ledger.refresh()
        return None


def _since(job: JobSummary) -> str:
    """When the owner's last event was recorded (the lease's start), for the reasons."""
    last_us = job.lease_until_us - job.lease_ms * 1000
    return datetime.fromtimestamp(last_us / 1_000_000, UTC).isoformat(timespec="milliseconds")


__all__ = ["NOTHING", "Claim", "Decision", "LeaseLost", "claim", "claimable", "decide", "end", "new_owner_id"]
