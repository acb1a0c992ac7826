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
* ``on_module_start/end`` of the optimizer's proposing modules (its adapter's ``proposers``:
  MIPROv2's instruction proposer, InferRules' rule writer) -> one ``Progress`` per proposal.
* The ``dspy`` logger (it does not propagate, so a handler is attached to it directly): the
  lines its adapter's ``log_parsers`` read (MIPROv2's phases, COPRO's rounds, SIMBA's scores,
  BetterTogether's steps: each family's module in optimizer_svc.optimizers says which).
* ``on_lm_end`` + a usage tracker shared by all threads -> ``Usage``.

Optimizers with hooks of their own report through them into this capture (GEPA's callbacks,
optimizer_svc.optimizers.gepa).

Callbacks and metric calls happen on DSPy's worker threads as well as the job thread, so
all state is behind one lock and ``emit`` may be called from any thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback

from dspyops.lmcache.lm import CachedLM
from optimizer_svc.cancel import CancelToken, JobCancelled
from optimizer_svc.optimizers.base import LogParser, Proposer, evaluation_score
from optimizer_svc.progress.events import Emit, JobEvent, Progress, TrialCompleted
from optimizer_svc.progress.predictors import changed_predictors, fingerprints
from optimizer_svc.progress.usage import SharedUsageTracker


@dataclass
class _Bootstrap:
    """One BootstrapFewShot compile in progress."""

    number: int
    total: int
    threshold: float | None
    tried: set[int]
    accepted: int = 0


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
        log_parsers: Sequence[LogParser] = (),
        proposers: Sequence[Proposer] = (),
        student: dspy.Module | None = None,
    ) -> None:
        self._emit = emit
        # what each trial's candidate is compared with to name the predictors it changed
        self._student = fingerprints(student) if student is not None else {}
        self._describe = describe
        self.usage = usage
        self._cancel = cancel
        self._trials_from_evaluate = trials_from_evaluate
        self._log_parsers = tuple(log_parsers)
        self._proposers = {p.module: p for p in proposers}
        self._lock = threading.Lock()
        self._other_lm_calls: set[str] = set()  # call ids of LMs other than the job's own
        self._closed = False
        self._in_compile = False
        self._outer_seen = False
        self._outer_compile: str | None = None
        self._outer_is_labeled = False
        self._evaluations: dict[str, tuple[dspy.Module | None, bool]] = {}
        self._bootstraps: dict[str, _Bootstrap] = {}
        self._bootstrap_count = 0
        self._proposals: dict[
            str, tuple[Proposer, str]
        ] = {}  # call id -> the proposer running, its predictor
        self._proposed: dict[str, int] = {}  # proposer module -> its proposals so far
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
        compile several teleprompters in turn (Ensemble) or none at all (KNNFewShot).
        """
        self._in_compile = True
        try:
            yield
        finally:
            self._in_compile = False

    def progress(self, step: int, total: int, message: str, predictor: str = "") -> None:
        self.emit(Progress(step, total, message, predictor))

    def record_trial(
        self,
        score: float,
        candidate: str,
        *,
        counts_for_best: bool = True,
        program: Any = None,
        predictors: Sequence[str] | None = None,
    ) -> TrialCompleted:
        """One candidate scored; the predictors it concerns are ``predictors`` when the
        optimizer says, else those where ``program`` differs from the student."""
        named = tuple(predictors) if predictors is not None else changed_predictors(program, self._student)
        with self._lock:
            self.trials += 1
            if counts_for_best and (self.best_score is None or score > self.best_score):
                self.best_score = score
            best = self.best_score if self.best_score is not None else score
            event = TrialCompleted(self.trials, score, best, candidate, named)
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
                self.emit(Progress(i, total, f"{where}selected labeled demo {i}/{total}", name))

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
        self.record_trial(score, candidate, counts_for_best=not minibatch, program=program)

    # ------------------------------------------------------------------ modules and LM calls

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        # the optimizer's own proposing modules (its adapter's proposers), matched by name
        proposer = self._proposers.get(type(instance).__name__) if self._proposers else None
        if proposer is not None and self.compiling:
            # Module.__call__(*args, **kwargs): the call's arguments are under "kwargs"
            arguments = inputs.get("kwargs", inputs) if isinstance(inputs, dict) else {}
            predictor = proposer.predictor(arguments) if proposer.predictor is not None else ""
            with self._lock:
                self._proposals[call_id] = (proposer, predictor)

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        with self._lock:
            running = self._proposals.pop(call_id, None)
            if running is None or exception is not None:
                return
            proposer, predictor = running
            n = self._proposed[proposer.module] = self._proposed.get(proposer.module, 0) + 1
        message = proposer.message(n, outputs)
        # a one-predictor program's predictor is DSPy's "self": no name in the message
        named = predictor and predictor != "self"
        self.emit(Progress(n, 0, f"{predictor}: {message}" if named else message, predictor))

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if not isinstance(instance, CachedLM):  # the job's LMs count their own calls (on_call)
            with self._lock:
                self._other_lm_calls.add(call_id)

    def on_lm_end(self, call_id: str, outputs: Any | None, exception: BaseException | None = None) -> None:
        with self._lock:
            if call_id not in self._other_lm_calls:
                return
            self._other_lm_calls.discard(call_id)
        if isinstance(exception, JobCancelled):
            return  # refused by the budget or a cancel before it was paid for
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
        for parser in self._log_parsers:  # the running optimizer's (its adapter's): first match wins
            if match := parser.pattern.search(message):
                parser.read(match, self)
                return


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
            # the capture itself, or one of a job's callbacks as one (optimizer_svc.jobs.callbacks)
            callbacks = dspy.settings.get("callbacks", None) or ()
            if any(cb is self.capture or self.capture in getattr(cb, "components", ()) for cb in callbacks):
                self.capture.on_log_line(record.getMessage())
        except Exception:  # a progress line must never break the job
            self.handleError(record)
