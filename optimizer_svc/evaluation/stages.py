"""Per-module figures of one evaluation run (``EvaluationReport.stages``): calls, latency p50/p95
and LM usage of each module of the program, by its name in the program.

A DSPy callback, deliberately small: module calls are timed on a per-thread stack (an
evaluation calls its modules synchronously, one example per worker thread), and each LM
call and its usage go to every module open on that thread (a ChainOfThought ``analyze``
and its ``analyze.predict`` both count the call). The gateway's traces
(``dspyops.tracing``) record much more per call; this keeps only totals, so a large dataset
costs a list of latencies per module.

Names are DSPy's ``named_sub_modules`` paths without ``self.``, in that order; the program
itself is a stage only when it has no sub-modules (a lone Predict is ``self``). A module the
program copies per call (the k-NN program's inner module, ``dspyops.programs.wrappers``) is
named through the ``stage_name`` attribute the copy carries.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback

from dspyops.proto import events_pb2 as pb

ROOT = "self"


def stage_names(program: dspy.Module) -> dict[int, str]:
    """id(module) -> its stage name, for every module of ``program`` that is a stage."""
    named = [(name, module) for name, module in program.named_sub_modules() if name != ROOT]
    if not named:
        return {id(program): ROOT}
    return {id(module): name.removeprefix(f"{ROOT}.") for name, module in named}


@dataclass
class Stage:
    """One module's figures so far (optimizer_svc.evaluation.report makes its StageReport)."""

    order: int
    latencies_ms: list[float] = field(default_factory=list)
    lm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def usage(self) -> pb.Usage:
        return pb.Usage(
            lm_calls=self.lm_calls,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=self.cost_usd,
        )


class StageStats(BaseCallback):
    """Collects the stages' figures across the run's threads (one lock, small critical sections)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[int, str] = {}
        self._stages: dict[str, Stage] = {}
        self._local = threading.local()  # .stack: [(call id, stage name, start)]

    def watch(self, program: dspy.Module) -> None:
        """Name the modules of a program instance this run calls (one per worker thread)."""
        names = stage_names(program)
        with self._lock:
            self._names.update(names)
            for name in names.values():
                self._stage(name)

    def _stage(self, name: str) -> Stage:
        """Under the lock: the stage's figures, new ones in order of first sight."""
        stage = self._stages.get(name)
        if stage is None:
            stage = self._stages[name] = Stage(len(self._stages))
        return stage

    def _stack(self) -> list[tuple[str, str, float]]:
        stack: list[tuple[str, str, float]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        name = self._names.get(id(instance)) or getattr(instance, "stage_name", None)
        if isinstance(name, str):
            self._stack().append((call_id, name, time.perf_counter()))

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        stack = self._stack()
        if not stack or stack[-1][0] != call_id:
            return  # a module that is not a stage
        _, name, start = stack.pop()
        elapsed = (time.perf_counter() - start) * 1000
        with self._lock:
            self._stage(name).latencies_ms.append(elapsed)

    def on_lm_end(self, call_id: str, outputs: Any | None, exception: BaseException | None = None) -> None:
        with self._lock:
            for _, name, _ in self._stack():
                self._stage(name).lm_calls += 1

    def add_usage(self, prompt: int, completion: int, cost: float) -> None:
        """From the run's usage tracker, on the thread that made the LM call."""
        with self._lock:
            for _, name, _ in self._stack():
                stage = self._stage(name)
                stage.input_tokens += prompt
                stage.output_tokens += completion
                stage.cost_usd += cost

    def stages(self) -> list[tuple[str, Stage]]:
        """Every stage, in program order, with a copy of its figures."""
        with self._lock:
            ordered = sorted(self._stages.items(), key=lambda item: item[1].order)
            return [(name, replace(stage, latencies_ms=list(stage.latencies_ms))) for name, stage in ordered]
