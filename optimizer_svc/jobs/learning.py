"""A learning loop's retrain, as the optimizer accepts it: `base_trainset_job` (the trainset
that job resolved and recorded in its JobAccepted, followed by the request's own trainset:
the feedback's training part) and `learning` (the run: it must be on the record for that
deployment, a LearningTriggered the fold holds, so a job cannot claim a lineage it has not;
JobAccepted.learning records it)."""

from __future__ import annotations

import dataclasses

from dspyops.errors import FailedPrecondition, InvalidArgument, NotFound, shown
from dspyops.eventlog import EventStore
from dspyops.events import decode
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.state import State
from optimizer_svc.jobs.inputs import decode_examples
from optimizer_svc.jobs.requests import ValidatedJob


def with_learning(
    job: ValidatedJob, request: opb.StartOptimizationRequest, state: State, store: EventStore
) -> ValidatedJob:
    """`job` with the base job's trainset in front of its own and its run; the request as it
    was when it names neither. Raises naming base_trainset_job / learning.*."""
    if request.HasField("learning"):
        learning = request.learning
        deployment = state.deployments.get(learning.deployment)
        if deployment is None:
            raise NotFound("learning.deployment", f"no deployment named {shown(learning.deployment)}")
        if deployment.program != job.program:
            raise InvalidArgument(
                "learning.deployment",
                f"{deployment.name!r} serves {deployment.program!r}, not {job.program!r}",
            )
        runs = deployment.learning
        if runs is None or runs.run(learning.run_id) is None:
            raise NotFound(
                "learning.run_id",
                f"{deployment.name!r} has no learning run {shown(learning.run_id)} on record",
            )
        job = dataclasses.replace(job, learning=learning)
    if request.base_trainset_job:
        base_id = request.base_trainset_job
        if base_id not in state.jobs:
            raise NotFound("base_trainset_job", f"no job {shown(base_id)}")
        stored = store.read_stream(f"job-{base_id}")[:1]
        accepted = decode(stored[0]) if stored else None
        if not isinstance(accepted, pb.JobAccepted) or not accepted.HasField("inputs"):
            raise FailedPrecondition("base_trainset_job", f"job {base_id} recorded no trainset")
        if accepted.program != job.program:
            raise InvalidArgument(
                "base_trainset_job", f"job {base_id} trained {accepted.program!r}, not {job.program!r}"
            )
        inputs = accepted.inputs
        base = decode_examples(inputs.trainset, job.spec, list(inputs.input_keys), "base_trainset_job")
        job = dataclasses.replace(job, trainset=[*base, *job.trainset])
    return job
