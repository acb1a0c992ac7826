"""ExplainPrediction's walk back from a served version to what produced it, when a learning
retrain registered it: the version's job, the run its JobAccepted names (the optimizer
checked that run was on the record), the run's LearningTriggered (trigger, feedback window
and its digests, base job) and the DriftDetected that triggered it, with its statistics."""

from __future__ import annotations

from dspyops.eventlog import EventStore
from dspyops.events import decode
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import State
from gateway_svc.learning.job import accepted_of


def lineage_of(store: EventStore, state: State, program: str, version: str) -> gpb.LearningLineage | None:
    """The lineage of `program` `version` in `state` (None: no learning run registered it)."""
    versions = state.programs.get(program)
    served = versions.versions.get(version) if versions is not None else None
    job_id = str(served.lineage.get("job_id", "")) if served is not None else ""
    accepted = accepted_of(store, job_id) if job_id else None
    if accepted is None or not accepted.HasField("learning"):
        return None
    head = state.deployments.get(accepted.learning.deployment)
    learning = head.learning if head is not None else None
    run = learning.run(accepted.learning.run_id) if learning is not None else None
    if run is None:
        return None
    triggered = decode(store.read_at([run.position])[0])
    assert isinstance(triggered, pb.LearningTriggered)
    lineage = gpb.LearningLineage(
        run_id=run.run_id,
        trigger=triggered.trigger,
        drift_position=triggered.drift_position,
        feedback=triggered.feedback,
        base_job_id=triggered.base_job_id,
        job_id=job_id,
        serving_version=triggered.serving_version,
        triggered_position=run.position,
    )
    if triggered.drift_position:
        detection = decode(store.read_at([triggered.drift_position])[0])
        if isinstance(detection, pb.DriftDetected):
            lineage.detection.CopyFrom(detection)
    return lineage
