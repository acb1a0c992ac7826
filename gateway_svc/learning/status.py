"""GetLearningStatus: the loop as it stands for one deployment: its policy, why it is idle
(the plan of a tick taken now, nothing appended), the drift monitor's status and last
detection, the labelled examples since the last run, the active run (its job's state, its
gate's verdict), the last ended run, and the canary."""

from __future__ import annotations

from dspyops.events import decode
from dspyops.learning_state import LearningRun
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import State
from gateway_svc.learning.job import verdict_of
from gateway_svc.learning.plan import Plan, Planner, job_of, triggered_of
from gateway_svc.learning.window import read_feedback


def _run(state: State, planner: Planner, run: LearningRun) -> gpb.LearningRun:
    view = gpb.LearningRun(triggered=triggered_of(planner.store, run), triggered_position=run.position)
    job_id = run.job_id or job_of(state, run)
    if job_id:
        view.job_id = job_id
        job = state.jobs.get(job_id)
        view.job_state = job.state if job is not None else ""
        completed, _ = verdict_of(planner.store, job_id)
        if completed is not None:
            view.gate = ("passed: " if completed.gate_passed else "failed: ") + completed.gate_reason
    if not run.active:
        ended = decode(planner.store.read_at([run.ended_position])[0])
        assert isinstance(ended, pb.LearningRunEnded)
        view.ended.CopyFrom(ended)
        view.ended_position = run.ended_position
    return view


def status_proto(
    state: State, name: str, planner: Planner, plan: Plan, drift: gpb.DriftStatus, loop: str
) -> gpb.LearningStatus:
    deployment = state.deployments[name]
    status = gpb.LearningStatus(deployment=name, log_position=state.position, drift=drift, loop=loop)
    learning = deployment.learning
    if learning is not None:
        status.policy.CopyFrom(learning.policy_proto())
        status.enabled = learning.enabled
        status.paused = learning.paused
        status.idle = plan.text if plan.idle else ""
        last = learning.last
        new = read_feedback(state, planner.records, name, last.feedback_last_token if last else "")
        status.new_examples = len(new)
        active = learning.active
        if active is not None:
            status.active.CopyFrom(_run(state, planner, active))
        ended = [r for r in learning.runs if not r.active]
        if ended:
            status.last.CopyFrom(_run(state, planner, ended[-1]))
    if deployment.drift is not None and deployment.drift.detections:
        detection = deployment.drift.detections[-1]
        message = decode(planner.store.read_at([detection.position])[0])
        assert isinstance(message, pb.DriftDetected)
        status.last_detection.CopyFrom(message)
        status.last_detection_position = detection.position
    if deployment.canary is not None:
        status.canary.CopyFrom(deployment.canary.to_proto())
        status.canary_percent = deployment.canary.percent
    return status
