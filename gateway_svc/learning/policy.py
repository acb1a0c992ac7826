"""SetLearningPolicy and PauseLearning: the policy checked, its defaults filled in (so the
event says what every gateway's loop runs), appended as LearningPolicySet through the one
writer path, or INVALID_ARGUMENT naming the field and appending nothing."""

from __future__ import annotations

import math
import re
from collections.abc import Collection

from dspyops.commands import Decision
from dspyops.errors import FailedPrecondition, InvalidArgument, shown
from dspyops.learning_state import DEFAULT_CANARY_STEPS, DEFAULT_HOLDOUT
from dspyops.names import deployment_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import State
from gateway_svc.canary import MAX_STEP_SECONDS
from gateway_svc.experiments import deployment_of

MAX_EXAMPLES_TRIGGER = 1_000_000
MAX_INTERVAL_SECONDS = 366 * 86_400
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # an optimizer's or a preset's name


def _finite_at_least_0(field: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise InvalidArgument(field, f"must be a finite number >= 0 (0: none), got {value}")


def check_canary(given: pb.LearningCanary) -> pb.LearningCanary:
    """The canary a passing retrain starts, with StartCanary's rules (named policy.canary.*)."""
    steps = tuple(given.steps) or DEFAULT_CANARY_STEPS
    for i, step in enumerate(steps):
        if not math.isfinite(step) or not 0 < step <= 100:
            raise InvalidArgument(f"policy.canary.steps[{i}]", f"must be a percent in (0, 100], got {step}")
        if i and step <= steps[i - 1]:
            raise InvalidArgument(f"policy.canary.steps[{i}]", "steps must increase")
    if len(steps) < 2 or steps[-1] != 100:
        raise InvalidArgument("policy.canary.steps", "at least two steps, the last one 100 (promotion)")
    for name in ("max_error_rate", "max_latency_p95_ms", "max_cost_per_prediction"):
        _finite_at_least_0(f"policy.canary.{name}", getattr(given, name))
    if given.max_error_rate > 1:
        raise InvalidArgument(
            "policy.canary.max_error_rate", f"is a share in [0, 1], got {given.max_error_rate}"
        )
    if given.step_seconds > MAX_STEP_SECONDS:
        raise InvalidArgument("policy.canary.step_seconds", f"must be at most {MAX_STEP_SECONDS} (366 days)")
    samples = given.min_samples_per_step or 100
    if not 2 <= samples <= 10_000_000:
        raise InvalidArgument(
            "policy.canary.min_samples_per_step", f"must be in [2, 10000000], got {samples}"
        )
    checked = pb.LearningCanary()
    checked.CopyFrom(given)
    checked.steps[:] = steps
    checked.min_samples_per_step = samples
    return checked


def policy_from_request(
    given: pb.LearningPolicy, optimizers: Collection[str] | None, presets: Collection[str] | None
) -> pb.LearningPolicy:
    """The policy as it goes into the log. `optimizers`/`presets`: what the learning optimizer
    knows (None: no optimizer to ask; the job then refuses an unknown one)."""
    if bool(given.optimizer) == bool(given.preset):
        raise InvalidArgument("policy.optimizer", "give exactly one of optimizer or preset")
    if given.optimizer:
        if not _NAME.fullmatch(given.optimizer):
            raise InvalidArgument("policy.optimizer", f"is not an optimizer name: {shown(given.optimizer)}")
        if optimizers is not None and given.optimizer not in optimizers:
            known = ", ".join(sorted(optimizers))
            raise InvalidArgument("policy.optimizer", f"unknown {shown(given.optimizer)}; known: {known}")
    else:
        if not _NAME.fullmatch(given.preset):
            raise InvalidArgument("policy.preset", f"is not a preset name: {shown(given.preset)}")
        if presets is not None and given.preset not in presets:
            raise InvalidArgument(
                "policy.preset", f"unknown {shown(given.preset)}; known: {', '.join(sorted(presets))}"
            )
    if not given.on_drift and not given.min_new_examples:
        raise InvalidArgument("policy.min_new_examples", "give a trigger: on_drift, or min_new_examples > 0")
    if given.min_new_examples > MAX_EXAMPLES_TRIGGER:
        raise InvalidArgument("policy.min_new_examples", f"must be at most {MAX_EXAMPLES_TRIGGER}")
    holdout = given.holdout_fraction or DEFAULT_HOLDOUT
    if not (math.isfinite(holdout) and 0 < holdout < 1):
        raise InvalidArgument("policy.holdout_fraction", f"must be in (0, 1), got {holdout}")
    if given.HasField("min_improvement") and not (
        math.isfinite(given.min_improvement) and -1 <= given.min_improvement <= 1
    ):
        raise InvalidArgument("policy.min_improvement", f"must be in [-1, 1], got {given.min_improvement}")
    if given.min_interval_seconds > MAX_INTERVAL_SECONDS:
        raise InvalidArgument(
            "policy.min_interval_seconds", f"must be at most {MAX_INTERVAL_SECONDS} (366 days)"
        )
    b = given.budget
    for name in ("timeout_seconds", "max_cost_usd"):
        _finite_at_least_0(f"policy.budget.{name}", getattr(b, name))
    for name in ("max_lm_calls", "max_tokens"):
        if getattr(b, name) < 0:
            raise InvalidArgument(f"policy.budget.{name}", f"must be >= 0 (0: none), got {getattr(b, name)}")
    policy = pb.LearningPolicy()
    policy.CopyFrom(given)
    policy.holdout_fraction = holdout
    policy.canary.CopyFrom(check_canary(given.canary))
    return policy


def set_decision(
    state: State,
    request: gpb.SetLearningPolicyRequest,
    optimizers: Collection[str] | None,
    presets: Collection[str] | None,
) -> Decision:
    """SetLearningPolicy's decision (carried out through the writer path)."""
    deployment = deployment_of(state, request.deployment)
    learning = deployment.learning
    if request.enabled:
        event = pb.LearningPolicySet(
            deployment=deployment.name,
            policy=policy_from_request(request.policy, optimizers, presets),
            enabled=True,
            reason=request.reason,
        )
    else:
        if learning is None or not learning.enabled:
            raise FailedPrecondition(
                "deployment", f"deployment {deployment.name!r} has no learning policy to turn off"
            )
        event = pb.LearningPolicySet(
            deployment=deployment.name, policy=learning.policy_proto(), enabled=False, reason=request.reason
        )
    expected = request.expected_version if request.HasField("expected_version") else deployment.stream_version
    return Decision(deployment_stream(deployment.name), [event], expected)


def pause_decision(state: State, request: gpb.PauseLearningRequest) -> Decision:
    """PauseLearning's decision: the policy kept, `paused` set (false: resumed)."""
    deployment = deployment_of(state, request.deployment)
    learning = deployment.learning
    if learning is None or not learning.enabled:
        raise FailedPrecondition(
            "deployment", f"deployment {deployment.name!r} has no learning policy to pause"
        )
    if learning.paused == request.paused:
        return Decision()  # already so: nothing appended
    event = pb.LearningPolicySet(
        deployment=deployment.name,
        policy=learning.policy_proto(),
        enabled=True,
        paused=request.paused,
        reason=request.reason,
    )
    return Decision(deployment_stream(deployment.name), [event], deployment.stream_version)
