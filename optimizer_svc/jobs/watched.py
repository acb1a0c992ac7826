"""What a job reports, as the payloads its watchers are shown (lifecycle and trial events
are appended to the job's stream too; progress ticks are only streamed)."""

from __future__ import annotations

from google.protobuf.message import Message

from dspyops.proto import events_pb2 as pb
from optimizer_svc.progress.events import BaselineEvaluated, JobEvent, Progress, Started, TrialCompleted


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
