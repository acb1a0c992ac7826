"""Run one optimization job: baseline evaluation, compile with live progress, final evaluation.

Called from a worker thread of the server. Everything DSPy-related happens inside one
``dspy.context(lm=..., callbacks=[JobCallbacks(capture, ..., cancel LAST)], usage_tracker=...)``:
the context is a ContextVar, so concurrent jobs on other threads never see each other's LM or
callbacks, and ``dspy.configure`` is never called. The optimizer is constructed inside the
context too (MIPROv2 captures ``dspy.settings.lm`` in its constructor).

Only the compile needs DSPy's callbacks (trials, proposals, bootstraps, cancel at each call).
The job's own evaluations (baseline, final, must_beat) run with none, since each callback
puts every call on DSPy's slow path (optimizer_svc.jobs.callbacks): there the job's LMs count
their calls and check the budget and the cancel before each paid call (CachedLM's hooks), the
metric checks the cancel per example, and the evaluated program keeps its first failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import dspy

from dspyops.connections import OFFLINE_ONLY, Connections, ResolvedLM
from dspyops.lm import LMConfig, lm_from_resolved
from dspyops.lmcache.attempt import AttemptCache
from dspyops.lmcache.cache import LMCache
from dspyops.lmcache.lm import CachedLM
from dspyops.lmcache.memory import MemoryLMCache
from dspyops.metrics import allowed_metric_modules, resolve_metric
from dspyops.programs.build import build_module, program_state
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.programs.retrieve import lineage_corpora
from dspyops.programs.spec import ProgramSpec
from optimizer_svc.cancel import CancelCallback, CancelToken
from optimizer_svc.jobs.budgets import Budget, BudgetGuard
from optimizer_svc.jobs.callbacks import JobCallbacks
from optimizer_svc.jobs.first_failure import FirstFailure, silence_example_errors
from optimizer_svc.optimizers.base import CompileInputs, evaluation_score
from optimizer_svc.optimizers.registry import get_adapter, validate_params
from optimizer_svc.progress.capture import ProgressCapture
from optimizer_svc.progress.events import BaselineEvaluated, JobEvent, Started
from optimizer_svc.progress.usage import SharedUsageTracker, Usage
from optimizer_svc.tqdm_race import install as _tolerate_concurrent_bars

_tolerate_concurrent_bars()  # several jobs and evaluations share this process
silence_example_errors()  # DSPy would log each failing training example to stderr


@dataclass
class JobSpec:
    job_id: str
    spec: ProgramSpec
    lm: LMConfig
    optimizer: str
    params: dict[str, Any]
    metric: str
    trainset: list[dspy.Example]
    valset: list[dspy.Example]
    prompt_lm: LMConfig | None = None
    budget: Budget = field(default_factory=Budget)
    must_beat: dspy.Module | None = None  # a registered version to score on the same set
    connections: Connections = OFFLINE_ONLY  # the server's: what lm and prompt_lm name
    programs: ProgramContext = NO_CONTEXT  # the server's: user code and corpora the spec may use
    # the modules custom metrics may come from; None: this process's DSPYOPS_METRIC_MODULES
    # (a Ray task gets the optimizer's, read when the job was handed over)
    metric_modules: frozenset[str] | None = None
    # the job's LM cache (dspyops.lmcache), keyed by job_id: a run of a job id that has rows
    # there replays those calls instead of paying for them again. None: a private one
    lm_cache: LMCache | None = None


@dataclass
class JobResult:
    spec: ProgramSpec  # what is registered: the job's, with the wrapper its optimizer built around it
    # None once the result crossed a process (the Ray executor): registration needs the state
    program: dspy.Module | None
    state: dict[str, Any]
    baseline_score: float
    final_score: float
    usage: Usage
    trials: int
    must_beat_score: float | None = None
    # Retrieve stage -> the corpus digest it searched, from the student (the compiled program
    # also holds what the optimizer attached: candidate programs, trial logs)
    corpora: dict[str, str] = field(default_factory=dict)


def student_module(job: JobSpec) -> dspy.Module:
    """The module the job optimizes, fresh: the one seam between a job and how programs are
    built (one predictor, a pipeline, a user module: dspyops.programs builds them all)."""
    return build_module(job.spec, job.programs)


def run_job(
    job: JobSpec,
    emit: Callable[[JobEvent], None],
    cancel: CancelToken,
    usage: SharedUsageTracker | None = None,
) -> JobResult:
    """Optimize ``job.spec``; raises JobCancelled when cancelled or out of budget, anything
    else on failure.

    ``emit`` is called from DSPy's worker threads as well as this one. ``usage`` (the
    caller's, to read what a cancelled job spent) counts every LM call of the job, in
    whichever thread; ``job.budget`` is enforced through ``cancel``.

    Both LMs (the task LM and the prompt LM) are the job's cached LMs: a call
    ``job.lm_cache`` holds for ``job.job_id`` is replayed (counted in ``replayed_lm_calls``,
    not in ``lm_calls``, reserving nothing of ``max_lm_calls``), any other is paid and kept.
    """
    # Everything that can be rejected is rejected before the first LM call.
    adapter = get_adapter(job.optimizer)
    params = validate_params(job.optimizer, job.params)
    if not job.trainset:
        raise ValueError("trainset: at least one example is required")
    metric_modules = job.metric_modules if job.metric_modules is not None else allowed_metric_modules()
    metric = resolve_metric(job.metric, metric_modules)
    resolved = job.connections.resolve(job.lm)
    prompt_resolved = (
        job.connections.resolve(job.prompt_lm, "prompt_lm") if job.prompt_lm is not None else None
    )
    guard = BudgetGuard(job.budget, cancel)
    usage = usage if usage is not None else SharedUsageTracker()
    # this attempt's view: no reads a first attempt cannot hit, writes in batches
    lm_cache = AttemptCache(job.lm_cache if job.lm_cache is not None else MemoryLMCache(), job.job_id)

    def job_lm(resolved: ResolvedLM) -> dspy.LM:
        cached = partial(
            CachedLM,
            lm_cache=lm_cache,
            job_id=job.job_id,
            # the endpoint too, when a request named its own (DSPy's key ignores api_base)
            connection=resolved.connection.name + (f"@{resolved.api_base}" if resolved.api_base else ""),
            on_replay=usage.count_replay,
            on_call=usage.count_call,
            before_paid=guard.reserve_paid_call,
        )
        return lm_from_resolved(resolved, make=cached)

    lm = job_lm(resolved)
    prompt_lm = job_lm(prompt_resolved) if prompt_resolved is not None else None
    student = student_module(job)
    evalset = job.valset or job.trainset
    num_threads = params["num_threads"]
    cancel.check()

    # the connections' prices give a cost to calls whose provider reports none (self-hosted)
    usage.prices = {lm.model: resolved.prices}
    if prompt_lm is not None and prompt_resolved is not None:
        usage.prices.setdefault(prompt_lm.model, prompt_resolved.prices)
    usage.on_change = guard.check
    capture = ProgressCapture(
        emit,
        adapter.describe,
        usage,
        cancel,
        trials_from_evaluate=adapter.trials_from_evaluate,
        log_parsers=adapter.log_parsers,  # how this optimizer's progress is read
        proposers=adapter.proposers,
        student=student,
    )
    job_metric = capture.wrap_metric(metric)
    # cancel LAST: the capture sees every start first; the guard trips the token just before.
    failure = FirstFailure()  # the cause to name when DSPy stops with a causeless message
    callbacks = [JobCallbacks(capture, failure, guard, CancelCallback(cancel))]
    guard.start_timer()
    must_beat_score = None
    try:
        with (
            dspy.context(lm=lm, callbacks=callbacks, usage_tracker=usage),
            capture.dspy_log_progress(),
        ):
            inputs = CompileInputs(
                student=student,
                trainset=list(job.trainset),
                valset=list(job.valset),
                metric=job_metric,
                params=params,
                prompt_lm=prompt_lm,
                capture=capture,
                cancel=cancel,
            )
            optimizer = adapter.build(inputs)
            capture.emit(Started(adapter.name, adapter.planned_trials(inputs)))

            baseline = _evaluate(student, evalset, job_metric, num_threads, failure)
            cancel.check()
            capture.emit(BaselineEvaluated(baseline, len(evalset)))

            with capture.compile_phase():
                compiled = adapter.compile(optimizer, inputs)
            cancel.check()  # DSPy may have finished the compile on a swallowed error path (GEPA's stop)
            final = _evaluate(compiled, evalset, job_metric, num_threads, failure)
            cancel.check()
            if capture.trials == 0:
                # LabeledFewShot, BootstrapFewShot and KNNFewShot score no candidates: their one
                # trial is the result.
                capture.record_trial(final, adapter.describe(compiled), program=compiled)

            if job.must_beat is not None:
                # The gate's reference: same set, metric and LM (this context's) as the job.
                must_beat_score = _evaluate(job.must_beat, evalset, job_metric, num_threads, failure)
                cancel.check()
    except Exception as exc:
        cause = failure.cause_of(exc)
        if cause is exc:
            raise
        raise cause from None  # the traceback of DSPy's stop says nothing more
    finally:
        guard.stop()
        capture.close()
        lm_cache.flush_quietly()  # what waits is written before the job's end can delete it

    return JobResult(
        spec=replace(job.spec, wrapper=adapter.wrapper) if adapter.wrapper else job.spec,
        program=compiled,
        state=program_state(compiled),
        baseline_score=baseline,
        final_score=final,
        usage=usage.snapshot(),
        trials=capture.trials,
        must_beat_score=must_beat_score,
        corpora=lineage_corpora(student),
    )


def _evaluate(
    program: dspy.Module,
    devset: list[dspy.Example],
    metric: Callable[..., float],
    threads: int,
    failure: FirstFailure,
) -> float:
    """One of the job's own evaluations, without DSPy's callbacks (the module docstring says
    who does their work here); an example's failure is kept as the job's first."""

    def run(**inputs: Any) -> Any:
        try:
            return program(**inputs)
        except Exception as exc:
            failure.keep(exc)
            raise

    evaluate = dspy.Evaluate(devset=devset, metric=metric, num_threads=threads, display_progress=False)
    with dspy.context(callbacks=[]):
        result = evaluate(run)
    return evaluation_score(result)
