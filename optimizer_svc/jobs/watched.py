"""What a job's watchers are shown: the OptimizationEvent kind of each job event.

Lifecycle and trial events are appended to the job's stream and streamed; progress ticks
are only streamed; claim events are streamed once OptimizationEvent has a kind for them,
and lease renewals and releases never are (they say nothing a watcher needs).
"""

from __future__ import annotations

from google.protobuf.message import Message

from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.progress.events import BaselineEvaluated, JobEvent, Progress, Started, TrialCompleted

_KIND_OF: dict[str, str | None] = {
    "JobAccepted": "accepted",
    "JobStarted": "started",
    "BaselineEvaluated": "baseline",
    "JobProgress": "progress",
    "TrialCompleted": "trial",
    "JobCompleted": "completed",
    "JobFailed": "failed",
    "JobCancelled": "cancelled",
    "JobInterrupted": "interrupted",
    "GateEvaluated": "gate",
    "JobClaimed": "claimed",
    "JobRetried": "retried",
    "JobCancelRequested": "cancel_requested",
    "JobLeaseRenewed": None,
    "JobLeaseReleased": None,
}
_STREAMED = set(opb.OptimizationEvent.DESCRIPTOR.fields_by_name)


def kind_of(event_type: str) -> str | None:
    """The OptimizationEvent kind a job-stream event is watched as (None: not watched)."""
    kind = _KIND_OF[event_type.removeprefix("dspyops.v1.")]
    return kind if kind in _STREAMED else None


def job_event_payload(event: JobEvent) -> tuple[str, Message] | None:
    """An event the job reported (optimizer_svc.progress.events): its kind and payload."""
    if isinstance(event, Started):
        return "started", pb.JobStarted(optimizer=event.optimizer, planned_trials=event.planned_trials)
    if isinstance(event, BaselineEvaluated):
        return "baseline", pb.BaselineEvaluated(score=event.score, examples=event.examples)
    if isinstance(event, Progress):
        progress = pb.JobProgress(
            step=event.step, total=event.total, message=event.message, predictor=event.predictor
        )
        return "progress", progress
    if isinstance(event, TrialCompleted):
        trial = pb.TrialCompleted(
            trial=event.trial,
            score=event.score,
            best_score=event.best_score,
            candidate=event.candidate[:2000],
            predictors=list(event.predictors),
        )
        return "trial", trial
    return None
