"""The evaluators' own bounded executor: sampled work goes into a bounded queue that a few
worker tasks drain, off the Predict and RecordOutcome paths. Submitting never waits: when the
queue is full the work is dropped and counted (`dropped`), so a slow judge or a burst of
traffic can never slow a prediction down.

- A **metric** evaluator scores a sampled prediction when a human outcome with `expected`
  arrives for it: the prediction's recorded outputs against the expected ones, with the
  metric the jobs use (dspyops.metrics: built-in or allowlisted).
- A **judge** evaluator scores a sampled prediction once it is recorded: its judge version
  (loaded like any served version, its artifact verified: gateway_svc.loader through
  Predictions.load) runs on the captured inputs and the outputs and answers `score`. Its LM
  calls and cost count against its hourly budget (budget.py) and are shown apart from the
  served predictions' (ListEvaluators), never added to a prediction record.

A score is an outcome with source "evaluator:<name>" (records.add_scored): once per
prediction and evaluator. The evaluator is looked up again when its work runs, so work
queued before a remove or a change is skipped or scored by what is in force.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import dspy
import structlog

from dspyops.evaluators_state import EvaluatorState
from dspyops.metrics import resolve_metric
from dspyops.programs.asynccall import acall
from dspyops.scrub import scrub
from dspyops.state import State, VersionState
from dspyops.tracing import ROOT_NAME, traced
from gateway_svc.evaluators.budget import HourlyBudget
from gateway_svc.evaluators.sampling import sampled
from gateway_svc.lm_usage import LMUsage
from gateway_svc.loader import LoadedProgram
from gateway_svc.records import PredictionRecord, PredictionStore
from gateway_svc.run_settings import running

SCORE_FIELD = "score"  # what a judge answers


@dataclass
class Counters:
    """One evaluator's work on this gateway since it started."""

    sampled: int = 0
    scored: int = 0
    dropped: int = 0
    over_budget: int = 0
    failed: int = 0
    lm_calls: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Work:
    deployment: str
    name: str
    record: PredictionRecord
    expected: Mapping[str, str] = field(default_factory=dict)  # a metric's: the human's expected outputs


class EvaluatorRunner:
    def __init__(
        self,
        records: PredictionStore,
        current: Callable[[], State],
        load: Callable[[VersionState], LoadedProgram],
        *,
        clock: Callable[[], float],
        queue_size: int = 1000,
        metric_modules: Collection[str] = (),
    ) -> None:
        self.records = records
        self.current = current  # the replica's state now
        self.load = load
        self.clock = clock
        self.metric_modules = frozenset(metric_modules)
        self.queue: asyncio.Queue[Work] = asyncio.Queue(maxsize=max(1, queue_size))
        self.counters: dict[tuple[str, str], Counters] = {}
        self._budgets: dict[tuple[str, str], HourlyBudget] = {}
        self.lm_usage: LMUsage | None = None  # judges' LM calls counted (--metrics-port)
        # told of each score kept: (deployment, its source "evaluator:<name>")
        self.on_scored: Callable[[str, str], None] = lambda deployment, source: None

    def counters_of(self, deployment: str, name: str) -> Counters:
        return self.counters.setdefault((deployment, name), Counters())

    # ------------------------------------------------------------------ submitting (never waits)

    def after_predict(self, record: PredictionRecord) -> None:
        """A primary prediction was recorded: the judges that sample it get work."""
        if record.shadow_of or record.error:
            return
        deployment = self.current().deployments.get(record.deployment)
        for evaluator in deployment.evaluators if deployment is not None else ():
            if evaluator.is_judge and sampled(evaluator.name, record.prediction_id, evaluator.share):
                self._submit(Work(record.deployment, evaluator.name, record))

    def after_outcome(self, record: PredictionRecord, expected: Mapping[str, str]) -> None:
        """A human outcome with expected outputs was recorded: the metrics that sample it get work."""
        if not expected or record.error:
            return
        deployment = self.current().deployments.get(record.deployment)
        for evaluator in deployment.evaluators if deployment is not None else ():
            if not evaluator.is_judge and sampled(evaluator.name, record.prediction_id, evaluator.share):
                self._submit(Work(record.deployment, evaluator.name, record, dict(expected)))

    def _submit(self, work: Work) -> None:
        counters = self.counters_of(work.deployment, work.name)
        counters.sampled += 1
        try:
            self.queue.put_nowait(work)
        except asyncio.QueueFull:
            counters.dropped += 1
        except Exception:  # whatever goes wrong here must not fail the Predict that called
            counters.failed += 1
            structlog.get_logger().exception("evaluator_submit_failed", evaluator=work.name)

    # ------------------------------------------------------------------ the workers

    async def work(self) -> None:
        """One worker: takes queued work until cancelled; a failure is counted, never raised."""
        while True:
            work = await self.queue.get()
            try:
                await self._run(work)
            except Exception as exc:
                self.counters_of(work.deployment, work.name).failed += 1
                structlog.get_logger().warning(
                    "evaluator_failed",
                    deployment=work.deployment,
                    evaluator=work.name,
                    prediction_id=work.record.prediction_id,
                    # scrubbed before it is cut: a provider's error may echo a key
                    error=scrub(f"{type(exc).__name__}: {exc}")[:300],
                )
            finally:
                self.queue.task_done()

    async def _run(self, work: Work) -> None:
        deployment = self.current().deployments.get(work.deployment)
        evaluator = (
            next((e for e in deployment.evaluators if e.name == work.name), None) if deployment else None
        )
        if evaluator is None:  # removed since the work was queued
            return
        if evaluator.is_judge:
            score = await self._judge(work, evaluator)
        else:
            score = await asyncio.to_thread(self._metric, work, evaluator)
        if score is None:
            return
        counters = self.counters_of(work.deployment, work.name)
        if await asyncio.to_thread(
            self.records.add_scored, work.record.prediction_id, evaluator.source, score
        ):
            counters.scored += 1
            self.on_scored(work.deployment, evaluator.source)

    def _metric(self, work: Work, evaluator: EvaluatorState) -> float:
        metric = resolve_metric(evaluator.metric, self.metric_modules)
        outputs = json.loads(work.record.outputs_json or "{}")
        example = dspy.Example(**work.expected).with_inputs()  # every expected field is a label
        return _finite(metric(example, outputs, None), f"metric {evaluator.metric}")

    async def _judge(self, work: Work, evaluator: EvaluatorState) -> float | None:
        counters = self.counters_of(work.deployment, work.name)
        program = self.current().programs.get(evaluator.judge_program)
        version = program.versions.get(evaluator.judge_version) if program is not None else None
        if version is None:
            raise LookupError(f"judge {evaluator.judge_program}@{evaluator.judge_version} is not registered")
        loaded = await asyncio.to_thread(self.load, version)
        given = {
            **json.loads(work.record.outputs_json or "{}"),
            **json.loads(work.record.inputs_json or "{}"),
        }
        missing = [name for name in loaded.inputs if name not in given]
        if missing:  # nothing captured (the policy changed), or an allowlist without them
            raise LookupError(f"the prediction kept no {missing} for the judge")
        budget = self._budget(work.deployment, evaluator)
        if not budget.start(self.clock()):
            counters.over_budget += 1
            return None
        calls = 0
        cost = 0.0
        try:
            with running(loaded, self.lm_usage), traced(loaded.module, loaded.names) as collector:
                prediction = await acall(loaded.module, {name: given[name] for name in loaded.inputs})
        finally:
            root = next((c for c in collector.calls() if c.name == ROOT_NAME), None)
            if root is not None:
                calls, cost = root.usage.lm_calls, root.usage.cost_usd
            budget.spend(self.clock(), calls, cost)
            counters.lm_calls += calls
            counters.cost_usd += cost
        return _finite(
            prediction.get(SCORE_FIELD), f"judge {evaluator.judge_program}@{evaluator.judge_version}"
        )

    def _budget(self, deployment: str, evaluator: EvaluatorState) -> HourlyBudget:
        budget = self._budgets.setdefault((deployment, evaluator.name), HourlyBudget(0, 0.0))
        budget.max_calls, budget.max_cost = evaluator.max_calls_per_hour, evaluator.max_cost_per_hour
        return budget


def _finite(value: object, what: str) -> float:
    """A score as a finite number, or ValueError naming what answered it."""
    try:
        score = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except ValueError:
        raise ValueError(f"{what} answered a score that is no number: {str(value)[:40]!r}") from None
    if not math.isfinite(score):
        raise ValueError(f"{what} answered a score that is not finite: {score}")
    return score
