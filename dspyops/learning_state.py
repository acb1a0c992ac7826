"""A deployment's learning loop as the fold sees it: its policy (LearningPolicySet) and its
runs (LearningTriggered, each closed by a LearningRunEnded). Both services read it: the
gateway's loop decides from it, the optimizer checks a learning job's run against it.

The fold's rule is `LearningState.after` (fold.py only dispatches to it); the reference fold
(tests/support/reference_fold.py) folds the same events independently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dspyops.proto import events_pb2 as pb

DEFAULT_HOLDOUT = 0.3
DEFAULT_CANARY_STEPS = (10.0, 25.0, 50.0, 75.0, 100.0)


@dataclass(frozen=True, slots=True)
class LearningRun:
    """One retrain: what triggered it (LearningTriggered at `position`) and, once it ended,
    how (LearningRunEnded at `ended_position`; 0 while it runs)."""

    run_id: str
    trigger: str  # drift | new_examples
    drift_position: int
    serving_version: str
    base_job_id: str
    request_id: str  # the StartOptimization request id: the job is state.requests[request_id]
    at_us: int  # the deciding gateway's clock
    position: int
    feedback_last_token: str  # the feedback window's end: later labels are "new"
    ended_position: int = 0
    result: str = ""
    job_id: str = ""
    candidate: str = ""
    canary_id: str = ""

    @property
    def active(self) -> bool:
        return self.ended_position == 0


@dataclass(frozen=True, slots=True)
class LearningState:
    """The policy (its LearningPolicy's deterministic bytes, in hex: the state is JSON in a
    snapshot), whether it is on and paused, and every run since the deployment's first policy."""

    policy: str
    enabled: bool
    paused: bool
    set_position: int
    runs: tuple[LearningRun, ...] = ()

    def policy_proto(self) -> pb.LearningPolicy:
        return pb.LearningPolicy.FromString(bytes.fromhex(self.policy))

    def run(self, run_id: str) -> LearningRun | None:
        return next((r for r in self.runs if r.run_id == run_id), None)

    @property
    def active(self) -> LearningRun | None:
        return next((r for r in reversed(self.runs) if r.active), None)

    @property
    def last(self) -> LearningRun | None:
        return self.runs[-1] if self.runs else None

    @staticmethod
    def after(
        current: LearningState | None,
        msg: pb.LearningPolicySet | pb.LearningTriggered | pb.LearningRunEnded,
        position: int,
    ) -> LearningState | None:
        """A deployment's learning state after a learning event on its stream (the fold's rule):
        a policy replaces the policy and keeps the runs; a trigger adds a run (once per run id);
        an end closes its run (once)."""
        # (dspyops.snapshots decodes this state from JSON: keep its fields JSON types)
        if isinstance(msg, pb.LearningPolicySet):
            policy = msg.policy.SerializeToString(deterministic=True).hex()
            runs = current.runs if current is not None else ()
            return LearningState(policy, msg.enabled, msg.paused, position, runs)
        if current is None:
            return None
        if isinstance(msg, pb.LearningTriggered):
            if current.run(msg.run_id) is not None:
                return current
            run = LearningRun(
                run_id=msg.run_id,
                trigger=msg.trigger,
                drift_position=msg.drift_position,
                serving_version=msg.serving_version,
                base_job_id=msg.base_job_id,
                request_id=msg.request_id,
                at_us=msg.at_us,
                position=position,
                feedback_last_token=msg.feedback.last_token,
            )
            return dataclasses.replace(current, runs=(*current.runs, run))
        runs = tuple(
            dataclasses.replace(
                r,
                ended_position=position,
                result=msg.result,
                job_id=msg.job_id,
                candidate=msg.candidate_version,
                canary_id=msg.canary_id,
            )
            if r.run_id == msg.run_id and r.active
            else r
            for r in current.runs
        )
        return dataclasses.replace(current, runs=runs)
