"""SetEvaluator (validated, appended as EvaluatorSet through the one writer path) and
ListEvaluators (the evaluators in force, this gateway's counters, and the statistics of
their recorded scores)."""

from __future__ import annotations

import asyncio
import functools
import json
import math
from collections.abc import Collection

from dspyops.commands import Commands, Decision
from dspyops.errors import FailedPrecondition, InvalidArgument, NotFound, shown
from dspyops.evaluators_state import SOURCE_PREFIX, EvaluatorState, evaluator_source
from dspyops.metrics import resolve_metric
from dspyops.names import check_name, deployment_stream
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import DeploymentState, State, VersionState
from gateway_svc.evaluators.runner import SCORE_FIELD, EvaluatorRunner
from gateway_svc.experiments import deployment_of
from gateway_svc.replica import Replica

MAX_REASON = 1000


@functools.lru_cache(maxsize=256)
def _fields(spec_json: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    spec = ProgramSpec.from_dict(json.loads(spec_json))
    return tuple(spec.input_fields()), tuple(spec.output_fields())


def fields_of(version: VersionState) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(inputs, outputs) of a version's signature (empty for a user module)."""
    return _fields(json.dumps(dict(version.spec), sort_keys=True))


def evaluator_from_request(
    state: State, deployment: DeploymentState, given: pb.Evaluator, metric_modules: Collection[str]
) -> pb.Evaluator:
    """The evaluator as it goes into the log, or INVALID_ARGUMENT / NOT_FOUND /
    FAILED_PRECONDITION naming the field."""
    name = check_name("evaluator.name", given.name)
    if not given.enabled:
        if all(e.name != name for e in deployment.evaluators):
            raise FailedPrecondition(
                "evaluator.name", f"deployment {deployment.name!r} has no evaluator {name!r} to remove"
            )
        return pb.Evaluator(name=name, enabled=False)
    if not (math.isfinite(given.share) and 0 < given.share <= 1):
        raise InvalidArgument("evaluator.share", f"must be in (0, 1], got {shown(given.share)}")
    if not (math.isfinite(given.max_cost_per_hour) and given.max_cost_per_hour >= 0):
        raise InvalidArgument(
            "evaluator.max_cost_per_hour",
            f"must be a finite number >= 0 (0: no limit), got {given.max_cost_per_hour}",
        )
    judge = bool(given.judge_program or given.judge_version)
    if bool(given.metric) == judge:
        raise InvalidArgument(
            "evaluator.metric",
            "give exactly one of a metric name or a judge (judge_program and judge_version)",
        )
    if not judge:
        if given.max_calls_per_hour or given.max_cost_per_hour:
            raise InvalidArgument(
                "evaluator.max_calls_per_hour", "budgets are a judge's: a metric evaluator makes no LM calls"
            )
        try:
            resolve_metric(given.metric, metric_modules)
        except ValueError as exc:
            raise InvalidArgument("evaluator.metric", str(exc).removeprefix("metric: ")) from None
    else:
        _check_judge(state, deployment, given)
    return pb.Evaluator(
        name=name,
        share=given.share,
        metric=given.metric,
        judge_program=given.judge_program,
        judge_version=given.judge_version,
        max_calls_per_hour=given.max_calls_per_hour,
        max_cost_per_hour=given.max_cost_per_hour,
        enabled=True,
    )


def _check_judge(state: State, deployment: DeploymentState, given: pb.Evaluator) -> None:
    check_name("evaluator.judge_program", given.judge_program)
    if not given.judge_version:
        raise InvalidArgument("evaluator.judge_version", "is required with judge_program")
    if given.judge_program == deployment.program:
        raise InvalidArgument(
            "evaluator.judge_program",
            f"a judge is another program than the one it judges ({deployment.program!r})",
        )
    program = state.programs.get(given.judge_program)
    if program is None:
        raise NotFound("evaluator.judge_program", f"no program {shown(given.judge_program)}")
    version = program.versions.get(given.judge_version)
    if version is None:
        raise NotFound(
            "evaluator.judge_version", f"{given.judge_program} has no version {shown(given.judge_version)}"
        )
    judge_inputs, judge_outputs = fields_of(version)
    if SCORE_FIELD not in judge_outputs:
        raise InvalidArgument(
            "evaluator.judge_version",
            f"{given.judge_program} {given.judge_version} answers {list(judge_outputs)}: a judge answers "
            f"a {SCORE_FIELD!r} field",
        )
    capture = deployment.capture
    if capture is None or not capture.inputs_outputs:
        raise FailedPrecondition(
            "capture.inputs_outputs",
            f"a judge reads the captured inputs and outputs, and deployment {deployment.name!r} keeps none: "
            f"`dspyops deployments set-capture-policy {deployment.name} --inputs-outputs` first",
        )
    served = state.programs.get(deployment.program)
    for route in deployment.routes:
        serving = served.versions.get(route.version) if served is not None else None
        if serving is None:
            continue
        inputs, outputs = fields_of(serving)
        if not inputs and not outputs:  # a user module: its fields are known when it answers
            continue
        kept = set(inputs) & set(capture.fields) if capture.fields else set(inputs)
        missing = [f for f in judge_inputs if f not in kept and f not in outputs]
        if missing:
            raise FailedPrecondition(
                "evaluator.judge_program",
                f"{given.judge_program} {given.judge_version} takes {missing}, which version "
                f"{route.version} of {deployment.program!r} neither answers nor captures",
            )


def results_source(source: str) -> str:
    """GetExperimentResults' `source`: "" or "human" (the human outcomes, the default) or
    "evaluator:<name>"; INVALID_ARGUMENT naming `source` otherwise."""
    if source in ("", "human"):
        return ""
    if not source.startswith(SOURCE_PREFIX):
        raise InvalidArgument("source", f"must be human or evaluator:<name>, got {shown(source)}")
    check_name("source", source.removeprefix(SOURCE_PREFIX))
    return source


class EvaluatorService:
    """The RPCs, on the event loop; appends run in a thread."""

    def __init__(
        self,
        commands: Commands | None,
        replica: Replica,
        runner: EvaluatorRunner,
        metric_modules: Collection[str] = (),
    ) -> None:
        self.commands = commands
        self.replica = replica
        self.runner = runner
        self.metric_modules = frozenset(metric_modules)

    def decide(self, state: State, request: gpb.SetEvaluatorRequest) -> Decision:
        deployment = deployment_of(state, request.deployment)
        if len(request.reason) > MAX_REASON:
            raise InvalidArgument("reason", f"longer than {MAX_REASON} characters")
        evaluator = evaluator_from_request(state, deployment, request.evaluator, self.metric_modules)
        expected = (
            request.expected_version if request.HasField("expected_version") else deployment.stream_version
        )
        event = pb.EvaluatorSet(deployment=deployment.name, evaluator=evaluator, reason=request.reason)
        return Decision(deployment_stream(deployment.name), [event], expected)

    async def set(self, request: gpb.SetEvaluatorRequest) -> gpb.EvaluatorStatus:
        commands = self.commands
        assert commands is not None  # the servicer checks there is a log first
        outcome = await asyncio.to_thread(
            commands.run, "SetEvaluator", request, lambda state: self.decide(state, request)
        )
        await self.replica.wait_for(outcome.state.position, timeout=10)
        deployment = deployment_of(self.replica.state, request.deployment)
        name = request.evaluator.name
        found = next((e for e in deployment.evaluators if e.name == name), None)
        if found is None:  # removed
            return gpb.EvaluatorStatus(
                deployment=deployment.name,
                evaluator=pb.Evaluator(name=name, enabled=False),
                source=evaluator_source(name),
            )
        return await self.status(deployment.name, found)

    async def status(self, deployment: str, evaluator: EvaluatorState) -> gpb.EvaluatorStatus:
        c = self.runner.counters_of(deployment, evaluator.name)
        n, total = await asyncio.to_thread(self.runner.records.source_summary, deployment, evaluator.source)
        return gpb.EvaluatorStatus(
            deployment=deployment,
            evaluator=evaluator.to_proto(),
            set_position=evaluator.set_position,
            sampled=c.sampled,
            scored=c.scored,
            dropped=c.dropped,
            over_budget=c.over_budget,
            failed=c.failed,
            lm_calls=c.lm_calls,
            cost_usd=c.cost_usd,
            n=n,
            mean=total / n if n else 0.0,
            source=evaluator.source,
        )

    async def list(self, request: gpb.ListEvaluatorsRequest) -> gpb.ListEvaluatorsResponse:
        deployment = deployment_of(self.replica.state, request.deployment)
        response = gpb.ListEvaluatorsResponse(deployment=deployment.name, queued=self.runner.queue.qsize())
        for evaluator in deployment.evaluators:
            response.evaluators.append(await self.status(deployment.name, evaluator))
        return response
