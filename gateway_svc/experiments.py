"""Experiment and rollback commands, and experiment results.

Commands are decisions on the replica's current state (`state -> Decision`), carried out by
the one writer path (dspyops.commands): appended to the deployment's stream with that
state's stream version as expected_version, so a decision taken on stale state (another
gateway, or the optimizer, changed the deployment meanwhile) is ABORTED, never applied, and
a retried request is answered from the log.
Results come from the prediction records and outcomes, through gateway_svc.statistics (analysis).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from dspyops.commands import Decision
from dspyops.errors import FailedPrecondition, InvalidArgument, NotFound, shown
from dspyops.history import History
from dspyops.names import check_name, deployment_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import DeploymentState, ExperimentState, ProgramState, State
from dspyops.views import routes_proto
from gateway_svc.records import PredictionStore
from gateway_svc.statistics.analysis import ExperimentResult, analyze
from gateway_svc.statistics.history import always_valid_history
from gateway_svc.statistics.summary import CONTINUOUS_LIMIT, ArmSummary

_TOLERANCE = 1e-6


def deployment_of(state: State, name: str, field: str = "deployment") -> DeploymentState:
    check_name(field, name)
    deployment = state.deployments.get(name)
    if deployment is None:
        raise NotFound(field, f"no deployment named {name!r} (log position {state.position})")
    return deployment


@dataclass
class Results:
    experiment: ExperimentState
    analysis: ExperimentResult
    assigned: dict[str, int]
    excluded: dict[str, int]  # per arm: stored outcomes outside the metric's range, left out
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # per treatment: (n, p)


class Experiments:
    def __init__(self, history: History, records: PredictionStore) -> None:
        self.history = history
        self.records = records
        self._sequential_p: dict[tuple[str, str], float] = {}  # running minimum per (experiment, arm)

    # ------------------------------------------------------------------ commands

    def start(self, state: State, request: gpb.StartExperimentRequest) -> Decision:
        deployment = deployment_of(state, request.deployment)
        if deployment.experiment is not None:
            raise FailedPrecondition(
                "deployment",
                f"experiment {deployment.experiment.experiment_id} is running; conclude or stop it first",
            )
        program = state.programs[deployment.program]
        control = _version(program, request.control, "control")
        if not request.treatments:
            raise InvalidArgument("treatments", "at least one treatment version is required")
        treatments = [_version(program, ref, f"treatments[{i}]") for i, ref in enumerate(request.treatments)]
        arms = [control, *treatments]
        if len(set(arms)) != len(arms):
            raise InvalidArgument("treatments", f"an arm appears twice: {arms}")
        weights = list(request.weights) or [1.0 / len(arms)] * len(arms)
        if len(weights) != len(arms):
            raise InvalidArgument(
                "weights", f"one weight per arm (control first): {len(arms)} arms, {len(weights)} weights"
            )
        for i, weight in enumerate(weights):
            if not math.isfinite(weight) or weight < 0:
                raise InvalidArgument(f"weights[{i}]", f"must be a finite number >= 0, got {weight}")
        if abs(sum(weights) - 1.0) > _TOLERANCE:
            raise InvalidArgument("weights", f"must sum to 1, got {sum(weights):g}")
        if request.metric not in (pb.BINARY, pb.CONTINUOUS):
            raise InvalidArgument("metric", "must be BINARY or CONTINUOUS")
        alpha = request.alpha or 0.05
        if not 0 < alpha <= 0.5:
            raise InvalidArgument("alpha", f"must be in (0, 0.5], got {alpha}")
        min_samples = request.min_samples_per_arm or 100
        if not 2 <= min_samples <= 10_000_000:
            raise InvalidArgument("min_samples_per_arm", f"must be in [2, 10000000], got {min_samples}")
        hash_version = request.hash_version or 2
        if hash_version not in (1, 2):
            raise InvalidArgument("hash_version", f"must be 1 or 2, got {hash_version}")
        coverage = request.coverage or 1.0
        if not 0 < coverage <= 1:
            raise InvalidArgument("coverage", f"must be in (0, 1], got {coverage}")
        experiment_id = uuid.uuid4().hex[:12]
        seed = request.seed or experiment_id
        if len(seed) > 200:
            raise InvalidArgument("seed", "at most 200 characters")
        experiment = pb.Experiment(
            experiment_id=experiment_id,
            control=control,
            treatments=treatments,
            weights=weights,
            metric=request.metric,
            alpha=alpha,
            min_samples_per_arm=min_samples,
            sequential=request.sequential,
            hash_version=hash_version,
            seed=seed,
            coverage=coverage,
        )
        event = pb.ExperimentStarted(deployment=deployment.name, experiment=experiment, reason=request.reason)
        return self._decision(
            deployment, [event], request.expected_version if request.HasField("expected_version") else None
        )

    def conclude(self, state: State, request: gpb.ConcludeExperimentRequest) -> Decision:
        deployment = deployment_of(state, request.deployment)
        results = self.results(state, request.deployment)
        experiment, analysis = results.experiment, results.analysis
        if request.promote_winner:
            if analysis.winner is None:
                raise FailedPrecondition(
                    "promote_winner",
                    f"no winner yet ({analysis.decision}: {analysis.reason}); "
                    "keep running or keep the control",
                )
            winner = analysis.winner
        else:
            winner = experiment.control
        event = pb.ExperimentConcluded(
            deployment=deployment.name,
            experiment_id=experiment.experiment_id,
            decision=analysis.decision,
            winner=winner,
            routes=[pb.Route(version=winner, weight=1.0, role=pb.PRIMARY)],
            reason=request.reason or analysis.reason,
        )
        return self._decision(deployment, [event], None)

    def stop(self, state: State, request: gpb.StopExperimentRequest) -> Decision:
        deployment = deployment_of(state, request.deployment)
        if deployment.experiment is None:
            raise FailedPrecondition("deployment", f"no experiment runs on {deployment.name!r}")
        event = pb.ExperimentStopped(
            deployment=deployment.name,
            experiment_id=deployment.experiment.experiment_id,
            reason=request.reason,
        )
        return self._decision(deployment, [event], None)

    def rollback(self, state: State, request: gpb.RollbackRequest) -> Decision:
        deployment = deployment_of(state, request.deployment)
        position = self.history.position(request.to, "to")
        if position >= state.position + 1:
            raise InvalidArgument(
                "to", f"position {position} is not in the past (log position {state.position})"
            )
        then = self.history.state_at(position).deployments.get(deployment.name)
        if then is None:
            raise FailedPrecondition(
                "to", f"deployment {deployment.name!r} did not exist at position {position}"
            )
        event = pb.RolledBack(
            deployment=deployment.name,
            to_position=position,
            routes=routes_proto(then.routes),
            reason=request.reason,
        )
        if then.experiment is not None:
            event.experiment.CopyFrom(then.experiment.to_proto())
        if then.canary is not None:
            event.canary.CopyFrom(then.canary.to_proto())
        expected = request.expected_version if request.HasField("expected_version") else None
        return self._decision(deployment, [event], expected)

    @staticmethod
    def _decision(deployment: DeploymentState, events: Sequence, expected: int | None) -> Decision:
        # decided on this state: expected_version defaults to the stream version we saw
        version = deployment.stream_version if expected is None else expected
        return Decision(deployment_stream(deployment.name), events, version)

    # ------------------------------------------------------------------ results

    def results(self, state: State, name: str, source: str = "", history: bool = False) -> Results:
        """On the human outcomes, or (`source` "evaluator:<name>") on an evaluator's scores:
        never both. Only the human results feed the running always-valid p-values. With
        `history`, each treatment's always-valid p over the sample (statistics.history)."""
        deployment = deployment_of(state, name)
        experiment = deployment.experiment
        if experiment is None:
            raise FailedPrecondition("deployment", f"no experiment runs on {deployment.name!r}")
        counts = self.records.arm_counts(deployment.name, experiment.experiment_id, experiment.metric, source)
        arms = {
            arm: ArmSummary(counts[arm].n, counts[arm].total, counts[arm].total_sq)
            for arm in experiment.arms
            if arm in counts
        }
        assigned = {arm: counts[arm].assigned if arm in counts else 0 for arm in experiment.arms}
        key = experiment.experiment_id if not source else f"{experiment.experiment_id}\x00{source}"
        previous = {arm: p for (eid, arm), p in self._sequential_p.items() if eid == key}
        analysis = analyze(
            arms,
            experiment.control,
            dict(zip(experiment.arms, experiment.weights, strict=True)),
            metric=experiment.metric,  # type: ignore[arg-type]
            alpha=experiment.alpha,
            min_samples_per_arm=experiment.min_samples_per_arm,
            sequential=experiment.sequential,
            previous_sequential_p=previous or None,
            assignment_counts=assigned,
        )
        for comparison in analysis.comparisons:
            self._sequential_p[(key, comparison.treatment)] = comparison.sequential_p_value
        excluded = {arm: counts[arm].excluded for arm in experiment.arms if arm in counts}
        if any(excluded.values()):
            analysis = replace(
                analysis, reason=f"{analysis.reason}; {_excluded_note(excluded, experiment.metric)}"
            )
        curves = {}
        if history:
            outcomes = self.records.arm_outcomes(
                deployment.name, experiment.experiment_id, experiment.metric, source
            )
            treatments = [arm for arm in experiment.arms if arm != experiment.control]
            curves = always_valid_history(
                outcomes,
                experiment.control,
                treatments,
                metric=experiment.metric,  # type: ignore[arg-type]
            )
        return Results(experiment, analysis, assigned, excluded, curves)


def _excluded_note(excluded: dict[str, int], metric: str) -> str:
    """In words: stored outcomes the statistics left out, per arm."""
    allowed = "0 or 1" if metric == "binary" else f"finite, |v| <= {CONTINUOUS_LIMIT:g}"
    per_arm = ", ".join(f"{arm}: {n}" for arm, n in excluded.items() if n)
    total = sum(excluded.values())
    return f"{total} stored outcomes outside the {metric} range ({allowed}) left out ({per_arm})"


def results_proto(deployment: str, results: Results) -> gpb.ExperimentResults:
    analysis = results.analysis
    comparisons = {c.treatment: c for c in analysis.comparisons}
    arms_by_name = {a.name: a for a in analysis.arms}
    message = gpb.ExperimentResults(
        deployment=deployment,
        experiment=results.experiment.to_proto(),
        srm_p_value=analysis.srm_p_value,
        decision=analysis.decision,
        reason=analysis.reason,
        winner=analysis.winner or "",
    )
    for arm in results.experiment.arms:
        estimate = arms_by_name.get(arm)
        comparison = comparisons.get(arm)
        message.arms.append(
            gpb.ArmResult(
                version=arm,
                control=arm == results.experiment.control,
                assigned=results.assigned.get(arm, 0),
                n=estimate.n if estimate else 0,
                mean=estimate.mean if estimate else 0.0,
                ci_low=estimate.ci_low if estimate else 0.0,
                ci_high=estimate.ci_high if estimate else 0.0,
                lift=comparison.lift if comparison else 0.0,
                lift_ci_low=comparison.lift_ci_low if comparison else 0.0,
                lift_ci_high=comparison.lift_ci_high if comparison else 0.0,
                relative_lift=(comparison.relative_lift or 0.0) if comparison else 0.0,
                p_value=comparison.p_value if comparison else 1.0,
                sequential_p_value=comparison.sequential_p_value if comparison else 1.0,
                excluded=results.excluded.get(arm, 0),
                history=[
                    gpb.SequentialLook(n=n, sequential_p_value=p) for n, p in results.history.get(arm, ())
                ],
            )
        )
    return message


def _version(program: ProgramState, ref: str, field: str) -> str:
    if not ref:
        raise InvalidArgument(field, "is required (a version such as 1.0.0 or an alias such as @champion)")
    version = program.resolve(ref)
    if version is None:
        raise NotFound(field, f"program {program.name!r} has no version or alias {shown(ref)}")
    if version.status == "archived":
        raise FailedPrecondition(field, f"version {version.version} is archived")
    return version.version
