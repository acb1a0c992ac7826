"""Run a program over a dataset (blocking: from a worker thread), one outcome per example.

Evaluation never crashes on a bad prediction: a module or metric that raises scores 0 for
that example, and the error is counted (and shown per example when results are asked for).
LM calls, tokens and cost are counted by the same shared tracker as a job's
(optimizer_svc.progress.usage), across the run's worker threads.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback

from dspyops.lm import lm_from_resolved
from dspyops.metrics import Metric
from dspyops.proto import events_pb2 as pb
from dspyops.scrub import scrub
from optimizer_svc.cancel import CancelCallback, CancelToken
from optimizer_svc.evaluation.plan import Target
from optimizer_svc.evaluation.stages import Stage, StageStats
from optimizer_svc.progress.usage import SharedUsageTracker
from optimizer_svc.tqdm_race import install as _tolerate_concurrent_bars

_tolerate_concurrent_bars()  # several jobs and evaluations share this process

_PROGRESS_EVENTS = 100  # at most about this many progress events per evaluation


@dataclass
class Outcome:
    """One example's run."""

    inputs: dict[str, str]
    expected: dict[str, str]
    predicted: dict[str, str] = field(default_factory=dict)
    score: float = 0.0
    error: str = ""
    latency_ms: float = 0.0


@dataclass
class RunResult:
    outcomes: list[Outcome]
    usage: pb.Usage
    stages: list[tuple[str, Stage]] = field(default_factory=list)  # per module, in program order


Progress = Callable[[int, int, float], None]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _score(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    raise TypeError(f"metric returned {value!r}, not a finite number")


def run_evaluation(
    target: Target,
    dataset: Sequence[dspy.Example],
    metric: Metric,
    num_threads: int = 1,
    progress: Progress | None = None,
    *,
    cancel: CancelToken | None = None,
    callbacks: Sequence[BaseCallback] = (),
) -> RunResult:
    """Run the target over the dataset (blocking; call it from a worker thread).

    A cancelled ``cancel`` token stops the run at its next module or LM call by raising
    JobCancelled (a BaseException: DSPy and the per-example ``except Exception`` below let
    it through). ``callbacks`` see every call too (the pool counts LM calls with one).
    """
    lm = lm_from_resolved(target.lm)
    outputs = target.spec.output_fields()
    usage = SharedUsageTracker()
    usage.prices = {lm.model: target.lm.prices}  # they cost the calls whose provider reports no cost
    stats = StageStats()
    usage.on_usage = stats.add_usage
    # the cancel check goes last, so the callbacks before it still see the call start
    active = [usage, stats, *callbacks, *([CancelCallback(cancel)] if cancel is not None else [])]
    modules = threading.local()
    lock = threading.Lock()
    done = 0
    total_score = 0.0
    every = max(1, len(dataset) // _PROGRESS_EVENTS)

    def one(example: dspy.Example) -> Outcome:
        nonlocal done, total_score
        inputs = {k: _text(v) for k, v in example.inputs().items()}
        outcome = Outcome(inputs=inputs, expected={k: _text(example[k]) for k in outputs if k in example})
        if cancel is not None:
            cancel.check()
        start = time.perf_counter()
        try:
            module = getattr(modules, "module", None)
            if module is None:  # one module per thread: modules are not thread-safe to share
                module = modules.module = target.module()
                stats.watch(module)
            with dspy.context(lm=lm, callbacks=active, usage_tracker=usage):
                prediction = module(**example.inputs())
            outcome.latency_ms = (time.perf_counter() - start) * 1000
            outcome.predicted = {k: _text(prediction[k]) for k in outputs if prediction.get(k) is not None}
            outcome.score = _score(metric(example, prediction, None))
        except Exception as exc:  # a failing module or metric scores 0, it never ends the run
            outcome.latency_ms = outcome.latency_ms or (time.perf_counter() - start) * 1000
            outcome.score = 0.0
            # scrubbed before it is cut: a provider's error may echo the request's key
            outcome.error = scrub(f"{type(exc).__name__}: {exc}")[:2000]
        with lock:
            done += 1
            total_score += outcome.score
            if progress is not None and (done % every == 0 or done == len(dataset)):
                progress(done, len(dataset), total_score / done)
        return outcome

    if num_threads <= 1:
        outcomes = [one(example) for example in dataset]
    else:
        with ThreadPoolExecutor(max_workers=num_threads, thread_name_prefix="evaluate") as pool:
            outcomes = list(pool.map(one, dataset))
    return RunResult(outcomes, usage.snapshot().to_proto(), stats.stages())
