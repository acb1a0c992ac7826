"""Progress capture for one optimization job, without patching DSPy.

What DSPy 3.4.1 exposes, and what each source becomes:

* ``on_compile_start/end`` (BaseCallback): which teleprompter is running. Nested compiles
  (BootstrapFewShot inside RandomSearch or MIPROv2's demo-set bootstrapping) fire too, since
  DSPy only suppresses re-entry of the *same* instance.
* ``on_evaluate_start/end``: every ``Evaluate`` call made while the outer compile runs is one
  candidate scored -> ``TrialCompleted`` (RandomSearch candidates, MIPROv2 trials, COPRO
  instructions). The program evaluated is in the start inputs; the score in the end outputs.
* The wrapped metric: BootstrapFewShot is the only caller passing a ``trace``, once per
  training example tried -> ``Progress`` ("bootstrapped 3 demos").
* ``on_module_end`` of MIPROv2's ``GenerateModuleInstruction`` -> one ``Progress`` per
  proposed instruction.
* The ``dspy`` logger (it does not propagate, so a handler is attached to it directly):
  MIPROv2's "==> STEP n: ... <==" phase lines, COPRO's "Iteration Depth" lines, SIMBA's
  "Starting batch" / "Scores after" / "Final trainset scores" lines (SIMBA scores its
  candidates with ``dspy.Parallel``, not ``Evaluate``: these lines are its only score report)
  and BetterTogether's "==> STEP i/n: OPTIMIZER <==" lines.
* ``on_module_end`` of InferRules' ``RulesInductionProgram`` -> one ``Progress`` per rule set.
* GEPA's own callbacks (``GepaProgress``, passed as ``gepa_kwargs={"callbacks": [...]}``):
  each valset evaluation of a candidate -> ``TrialCompleted``; candidate selection, proposed
  instructions and acceptance -> ``Progress``. GEPA's minibatch ``Evaluate`` calls are not trials.
* ``on_lm_end`` + a usage tracker shared by all threads -> ``Usage``.

Callbacks and metric calls happen on DSPy's worker threads as well as the job thread, so
all state is behind one lock and ``emit`` may be called from any thread.
"""

from __future__ import annotations

import ast
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback
from dspy.utils.usage_tracker import UsageTracker

from dspyops.connections import Prices
from optimizer_svc.cancel import CancelToken


@dataclass(frozen=True)
class Started:
    optimizer: str
    planned_trials: int  # 0 if unknown


@dataclass(frozen=True)
class BaselineEvaluated:
    score: float
    examples: int


@dataclass(frozen=True)
class Progress:
    step: int
    total: int  # 0 if unknown
    message: str


@dataclass(frozen=True)
class TrialCompleted:
    trial: int
    score: float
    best_score: float
    candidate: str  # instruction text, or "4 demos", ...


JobEvent = Started | BaselineEvaluated | Progress | TrialCompleted
Emit = Callable[[JobEvent], None]


@dataclass(frozen=True)
class Usage:
    lm_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float = 0.0  # reported by the LM, else from its connection's prices (offline: none)


class SharedUsageTracker(UsageTracker):
    """A DSPy usage tracker that every thread of the job shares.

    ``ParallelExecutor`` deep-copies ``settings.usage_tracker`` into each worker thread (so
    ``dspy.track_usage`` loses worker usage); returning ``self`` from ``__deepcopy__`` keeps
    one tally. Only totals are kept, so a long job does not grow a list per call.

    ``on_change`` (e.g. a budget check) is called with a snapshot after every update, on the
    thread that made the call. ``prices`` (LM model string -> its connection's prices) cost
    the calls whose provider reports no cost, so ``max_cost_usd`` works for self-hosted models.
    """

    def __init__(self, on_change: Callable[[Usage], None] | None = None) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.lm_calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd = 0.0
        self.on_change = on_change
        self.prices: dict[str, Prices] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedUsageTracker:
        return self

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        prompt = _count(usage_entry.get("prompt_tokens"))
        completion = _count(usage_entry.get("completion_tokens"))
        cost = _cost(usage_entry.get("cost"))
        prices = self.prices.get(lm)
        if not cost and prices:
            cost = prices.cost(prompt, completion)
        with self._lock:
            self.input_tokens += prompt
            self.output_tokens += completion
            self.cost_usd += cost
        self._changed()

    def count_call(self) -> None:
        with self._lock:
            self.lm_calls += 1
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.snapshot())

    def snapshot(self) -> Usage:
        with self._lock:
            return Usage(self.lm_calls, self.input_tokens, self.output_tokens, self.cost_usd)


def evaluation_score(result: Any) -> float:
    """Mean metric score in [0, 1] of an ``EvaluationResult``.

    Computed from the per-example results: ``result.score`` is a percentage rounded to two
    decimals, which turns 2/3 into 0.6667000000000001.
    """
    results = getattr(result, "results", None) or []
    if results:
        return sum(float(score) for *_, score in results) / len(results)
    return float(getattr(result, "score", 0.0)) / 100.0


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _cost(value: Any) -> float:
    """A provider-reported cost in USD (e.g. OpenRouter's ``usage.cost``); 0 when absent."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value and value >= 0:
        return float(value)
    return 0.0


@dataclass
class _Bootstrap:
    """One BootstrapFewShot compile in progress."""

    number: int
    total: int
    threshold: float | None
    tried: set[int]
    accepted: int = 0


_STEP_RE = re.compile(r"==> STEP (\d+): (.+?) <==")
_DEPTH_RE = re.compile(r"Iteration Depth: (\d+)/(\d+)")
_SIMBA_BATCH_RE = re.compile(r"^Starting batch (\d+) of (\d+)\.")
_SIMBA_STRATEGY_RE = re.compile(r"^Batch (\d+): Invoking strategy: (\w+)")
_SIMBA_SCORES_RE = re.compile(r"^Scores after (\d+) batches: \[(.*?)\], Best:")
_SIMBA_FINAL_RE = re.compile(r"^Final trainset scores: \[(.*?)\], Best:")
_BT_STEP_RE = re.compile(r"==> STEP (\d+)/(\d+): (\w+)")
_NUMPY_SCALAR_RE = re.compile(r"np\.\w+\(([^()]*)\)")
_TELEPROMPTERS = {name.upper(): name for name in dir(dspy.teleprompt) if not name.startswith("_")}
_PROPOSERS = frozenset({"GenerateModuleInstruction", "RulesInductionProgram"})


def _scores(text: str) -> list[float]:
    """'0.5, np.float64(0.25)' -> [0.5, 0.25] (numpy 2 reprs its scalars)."""
    cleaned = _NUMPY_SCALAR_RE.sub(r"\1", text).strip()
    if not cleaned:
        return []
    values = ast.literal_eval(f"[{cleaned}]")
    return [float(v) for v in values]


def _oneline(value: Any, n: int = 300) -> str:
    return " ".join(str(value or "").split())[:n]


class ProgressCapture(BaseCallback):
    """Turns DSPy's callbacks, metric calls and log lines of one job into ``JobEvent``s.

    Only what happens inside the outermost ``compile`` is reported as trials or progress;
    the runner's own baseline and final evaluations are reported by the runner.
    """

    def __init__(
        self,
        emit: Emit,
        describe: Callable[[dspy.Module], str],
        usage: SharedUsageTracker,
        cancel: CancelToken,
        *,
        trials_from_evaluate: bool = True,
    ) -> None:
        self._emit = emit
        self._describe = describe
        self.usage = usage
        self._cancel = cancel
        self._trials_from_evaluate = trials_from_evaluate
        self._lock = threading.Lock()
        self._closed = False
        self._in_compile = False
        self._outer_seen = False
        self._outer_compile: str | None = None
        self._outer_is_labeled = False
        self._evaluations: dict[str, tuple[dspy.Module | None, bool]] = {}
        self._bootstraps: dict[str, _Bootstrap] = {}
        self._bootstrap_count = 0
        self._proposals: dict[str, str] = {}
        self._proposed = 0
        self._rule_sets = 0
        self.trials = 0
        self.best_score: float | None = None

    # ------------------------------------------------------------------ plumbing

    def emit(self, event: JobEvent) -> None:
        if not self._closed:
            self._emit(event)

    def close(self) -> None:
        """After the job ends, late events from straggling worker threads are dropped."""
        self._closed = True

    @property
    def compiling(self) -> bool:
        return self._in_compile

    @contextmanager
    def compile_phase(self) -> Iterator[None]:
        """While the adapter's compile runs: only then are evaluations trials and log lines progress.

        Set by the runner rather than by the first ``on_compile_start``, since some adapters
        compile several teleprompters in turn (Ensemble) or run nested compiles after the
        outer one (KNNFewShot compiles a BootstrapFewShot per input).
        """
        self._in_compile = True
        try:
            yield
        finally:
            self._in_compile = False

    def progress(self, step: int, total: int, message: str) -> None:
        self.emit(Progress(step, total, message))

    def record_trial(self, score: float, candidate: str, *, counts_for_best: bool = True) -> TrialCompleted:
        with self._lock:
            self.trials += 1
            if counts_for_best and (self.best_score is None or score > self.best_score):
                self.best_score = score
            best = self.best_score if self.best_score is not None else score
            event = TrialCompleted(self.trials, score, best, candidate)
        self.emit(event)
        return event

    # ------------------------------------------------------------------ compile

    def on_compile_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        with self._lock:
            if self._in_compile and not self._outer_seen:
                self._outer_seen = True
                self._outer_compile = call_id
                self._outer_is_labeled = type(instance) is dspy.LabeledFewShot
            if isinstance(instance, dspy.BootstrapFewShot):
                self._bootstrap_count += 1
                trainset = inputs.get("trainset") or []
                self._bootstraps[call_id] = _Bootstrap(
                    number=self._bootstrap_count,
                    total=len(trainset),
                    threshold=instance.metric_threshold,
                    tried=set(),
                )

    def on_compile_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        with self._lock:
            self._bootstraps.pop(call_id, None)
            outer = call_id == self._outer_compile
            if outer:
                self._outer_compile = None
        if outer and self._outer_is_labeled and exception is None and isinstance(outputs, dspy.Module):
            self._report_labeled_demos(outputs)

    def _report_labeled_demos(self, program: dspy.Module) -> None:
        """LabeledFewShot picks its demos in one step, with no hook inside: report each pick after it."""
        for name, predictor in program.named_predictors():
            total = len(predictor.demos)
            where = "" if name == "self" else f"{name}: "
            for i in range(1, total + 1):
                self.emit(Progress(i, total, f"{where}selected labeled demo {i}/{total}"))

    # ------------------------------------------------------------------ evaluations

    def on_evaluate_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if not self.compiling or not self._trials_from_evaluate:
            return
        metadata = inputs.get("callback_metadata") or {}
        minibatch = metadata.get("metric_key") == "eval_minibatch"
        with self._lock:
            self._evaluations[call_id] = (inputs.get("program"), minibatch)

    def on_evaluate_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        with self._lock:
            entry = self._evaluations.pop(call_id, None)
        if entry is None or exception is not None or outputs is None:
            return
        program, minibatch = entry
        score = evaluation_score(outputs)
        candidate = self._describe(program) if isinstance(program, dspy.Module) else ""
        if minibatch:
            candidate = f"{candidate} (minibatch)"
        # MIPROv2 only trusts full evaluations for its best program; so does best_score.
        self.record_trial(score, candidate, counts_for_best=not minibatch)

    # ------------------------------------------------------------------ modules and LM calls

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        # MIPROv2's instruction proposer and InferRules' rule writer, matched by name: they
        # are not part of DSPy's public API.
        if type(instance).__name__ in _PROPOSERS and self.compiling:
            with self._lock:
                self._proposals[call_id] = type(instance).__name__

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        with self._lock:
            kind = self._proposals.pop(call_id, None)
            if kind is None or exception is not None:
                return
            if kind == "RulesInductionProgram":
                self._rule_sets += 1
                n = self._rule_sets
            else:
                self._proposed += 1
                n = self._proposed
        if kind == "RulesInductionProgram":  # its forward returns the rules text itself
            self.emit(Progress(n, 0, f"induced rule set {n}: {_oneline(outputs)}"))
            return
        text = str(getattr(outputs, "proposed_instruction", "") or "")
        self.emit(Progress(n, 0, f"proposed instruction {n}: {_oneline(text)}"))

    def on_lm_end(self, call_id: str, outputs: Any | None, exception: BaseException | None = None) -> None:
        self.usage.count_call()

    # ------------------------------------------------------------------ the metric

    def wrap_metric(self, metric: Callable[..., float]) -> Callable[..., float]:
        """The job's metric, checking the cancel token and reporting bootstrap attempts."""

        def job_metric(example: dspy.Example, prediction: Any, trace: Any = None) -> float:
            self._cancel.check()  # also stops work between LM calls, e.g. in worker threads
            score = metric(example, prediction, trace)
            if trace is not None:  # only BootstrapFewShot passes a trace
                self._bootstrap_attempt(example, score)
            return score

        job_metric.__name__ = getattr(metric, "__name__", "metric")
        return job_metric

    def _bootstrap_attempt(self, example: dspy.Example, score: float) -> None:
        with self._lock:
            if not self._bootstraps:
                return
            # BootstrapFewShot compiles run one at a time, on the job thread: the latest is current.
            run = self._bootstraps[next(reversed(self._bootstraps))]
            run.tried.add(id(example))
            # BootstrapFewShot's own acceptance rule.
            accepted = score >= run.threshold if run.threshold else bool(score)
            run.accepted += 1 if accepted else 0
            step, total, got, number = len(run.tried), run.total, run.accepted, run.number
        noun = "demo" if got == 1 else "demos"
        self.emit(Progress(step, total, f"demo set {number}: bootstrapped {got} {noun} from {step} examples"))

    # ------------------------------------------------------------------ the dspy logger

    @contextmanager
    def dspy_log_progress(self) -> Iterator[None]:
        """Forward the optimizers' phase lines from the ``dspy`` logger while the job runs."""
        handler = _JobLogHandler(self)
        logger = logging.getLogger("dspy")
        if logger.getEffectiveLevel() > logging.INFO:
            # The phase lines are INFO records: a quieter level set elsewhere in the process
            # (a user's logging config) would silently drop the job's progress. Not restored
            # afterwards, since another job may be running under the same logger.
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)

    def on_log_line(self, message: str) -> None:
        if not self.compiling:
            return
        if match := _STEP_RE.search(message):
            step = int(match.group(1))
            self.emit(Progress(step, 3, f"step {step}/3: {match.group(2).lower()}"))
        elif match := _DEPTH_RE.search(message):
            depth, total = int(match.group(1)), int(match.group(2))
            self.emit(Progress(depth, total, f"refinement round {depth}/{total}"))
        elif match := _SIMBA_BATCH_RE.search(message):
            step, total = int(match.group(1)), int(match.group(2))
            self.emit(Progress(step, total, f"SIMBA step {step}/{total}: sampling trajectories"))
        elif match := _SIMBA_STRATEGY_RE.search(message):
            step, strategy = int(match.group(1)), match.group(2).strip("_")
            self.emit(Progress(step, 0, f"SIMBA step {step}: new candidate by {strategy}"))
        elif match := _SIMBA_SCORES_RE.search(message):
            step = int(match.group(1))
            for i, score in enumerate(_scores(match.group(2)), 1):
                # Minibatch scores: like MIPROv2's, they do not count for best_score.
                self.record_trial(score, f"step {step} candidate {i} (minibatch)", counts_for_best=False)
        elif match := _SIMBA_FINAL_RE.search(message):
            for i, score in enumerate(_scores(match.group(1)), 1):
                self.record_trial(score, f"finalist {i} (whole trainset)")
        elif match := _BT_STEP_RE.search(message):
            step, total = int(match.group(1)), int(match.group(2))
            name = _TELEPROMPTERS.get(match.group(3), match.group(3))  # BetterTogether upper-cases it
            self.emit(Progress(step, total, f"strategy step {step}/{total}: {name}"))


class GepaProgress:
    """GEPA's callback protocol (``gepa.core.callbacks.GEPACallback``: duck-typed, one event dict
    per call) -> job events. GEPA calls these on the compile thread and swallows ``Exception``
    from them; cancellation goes through its stop callback and our CancelCallback instead.
    """

    def __init__(self, capture: ProgressCapture, describe: Callable[[dspy.Module], str]) -> None:
        self.capture = capture
        self.describe = describe

    def on_valset_evaluated(self, event: dict[str, Any]) -> None:
        candidate = event.get("candidate") or {}
        text = " || ".join(str(v) for v in candidate.values())
        idx = event.get("candidate_idx")
        label = "seed" if idx == 0 else f"candidate {idx}"
        evaluated, total = event.get("num_examples_evaluated"), event.get("total_valset_size")
        partial = f" ({evaluated}/{total} examples)" if evaluated != total else ""
        self.capture.record_trial(
            float(event.get("average_score", 0.0)), f"{label}: {_oneline(text)}{partial}"
        )

    def on_candidate_selected(self, event: dict[str, Any]) -> None:
        i = int(event.get("iteration", 0))
        self.capture.progress(
            i,
            0,
            f"iteration {i}: improving candidate {event.get('candidate_idx')} (score {event.get('score')})",
        )

    def on_proposal_end(self, event: dict[str, Any]) -> None:
        i = int(event.get("iteration", 0))
        for name, text in (event.get("new_instructions") or {}).items():
            where = "" if name == "self" else f" for {name}"
            self.capture.progress(i, 0, f"iteration {i}: proposed instruction{where}: {_oneline(text)}")

    def on_candidate_accepted(self, event: dict[str, Any]) -> None:
        i = int(event.get("iteration", 0))
        self.capture.progress(
            i,
            0,
            f"iteration {i}: accepted candidate {event.get('new_candidate_idx')} (minibatch sum "
            f"{event.get('new_score')})",
        )

    def on_candidate_rejected(self, event: dict[str, Any]) -> None:
        i = int(event.get("iteration", 0))
        self.capture.progress(
            i, 0, f"iteration {i}: rejected (minibatch {event.get('new_score')} vs {event.get('old_score')})"
        )

    def on_merge_accepted(self, event: dict[str, Any]) -> None:
        i = int(event.get("iteration", 0))
        parents = list(event.get("parent_ids") or [])
        self.capture.progress(i, 0, f"iteration {i}: merged candidates {parents}")


class _JobLogHandler(logging.Handler):
    """Sees every job's dspy log records; keeps those logged under this job's dspy.context.

    The logger is process-wide, but DSPy's settings overrides are a ContextVar that
    ParallelExecutor carries into its workers, so "our callback is active" identifies the job.
    """

    def __init__(self, capture: ProgressCapture) -> None:
        super().__init__(level=logging.INFO)
        self.capture = capture

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if any(cb is self.capture for cb in dspy.settings.get("callbacks", None) or ()):
                self.capture.on_log_line(record.getMessage())
        except Exception:  # a progress line must never break the job
            self.handleError(record)


__all__ = [
    "BaselineEvaluated",
    "GepaProgress",
    "JobEvent",
    "Progress",
    "ProgressCapture",
    "SharedUsageTracker",
    "Started",
    "TrialCompleted",
    "Usage",
    "evaluation_score",
]
