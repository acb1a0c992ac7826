"""What a replica that took a job over reads of it from the log: who submitted it, and
whether the owner it took the job from got as far as registering the job's version.

A job registers at most one version (its lineage names the job); a taker that finds one
completes the job from it instead of running the optimization again. The lost attempt's
usage is unknown here (it died with its owner): the JobCompleted says zero.
"""

from __future__ import annotations

from dspyops.eventlog import EventStore, StoredEvent
from dspyops.events import decode
from dspyops.names import job_stream
from dspyops.proto import events_pb2 as pb
from dspyops.state import VersionState
from optimizer_svc.jobs.registration import completed_from


def accepted_record(store: EventStore, job_id: str) -> tuple[StoredEvent, pb.JobAccepted]:
    """The job's JobAccepted as stored (its actor is the submitter's) and decoded."""
    first = store.read_stream(job_stream(job_id))[0]
    accepted = decode(first)
    if not isinstance(accepted, pb.JobAccepted):
        raise ValueError(f"job {job_id}: its stream does not start with JobAccepted ({first.type})")
    return first, accepted


def completed_from_version(store: EventStore, job_id: str, version: VersionState) -> pb.JobCompleted:
    """The JobCompleted the lost owner would have appended: its version as registered, and
    the verdict of the last GateEvaluated on the job's stream (appended before the version,
    under the lost owner's fence)."""
    gate = pb.GateEvaluated(passed=True)
    for record in store.read_stream(job_stream(job_id)):
        if record.type == pb.GateEvaluated.DESCRIPTOR.full_name:
            found = decode(record)
            assert isinstance(found, pb.GateEvaluated)
            gate = found
    return completed_from(
        version, usage=pb.Usage(), wall=0.0, gate_passed=gate.passed, gate_reason=gate.reason
    )


def last_event_us(store: EventStore, job_id: str) -> int:
    """recorded_at of the job's last event, in microseconds (the log's clock)."""
    records = store.read_stream(job_stream(job_id))
    return int(records[-1].recorded_at.timestamp() * 1_000_000) if records else 0
