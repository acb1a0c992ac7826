"""COPRO: refines each predictor's instruction by coordinate ascent, scored on the trainset.

Its progress: the "Iteration Depth: d/n" lines of the dspy logger (one refinement round
each), and every candidate instruction's ``Evaluate`` a trial.
"""

from __future__ import annotations

import re

import dspy
from dspy.teleprompt import COPRO
from dspy.teleprompt.teleprompt import Teleprompter

from optimizer_svc.optimizers.base import (
    NUM_THREADS,
    CompileInputs,
    LogParser,
    OptimizerAdapter,
    ParamSpec,
    ProgressSink,
    describe_instructions,
)


def _copro_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    return COPRO(
        prompt_model=inputs.prompt_lm,
        metric=inputs.metric,
        breadth=p["breadth"],
        depth=p["depth"],
        init_temperature=p["init_temperature"],
    )


def _copro_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    # COPRO scores candidates on the trainset; eval_kwargs go to both Evaluate() and its call.
    eval_kwargs = {"num_threads": inputs.params["num_threads"], "display_progress": False}
    return optimizer.compile(inputs.student, trainset=inputs.trainset, eval_kwargs=eval_kwargs)


def _copro_planned(inputs: CompileInputs) -> int:
    breadth, depth = inputs.params["breadth"], inputs.params["depth"]
    k = len(inputs.student.predictors())
    if k == 1:
        return breadth * depth  # breadth candidates per depth (breadth-1 proposals + the current one)
    # With several predictors COPRO re-evaluates every candidate so far at each depth.
    return k * breadth * depth * (depth + 1) // 2


def _read_depth(match: re.Match[str], sink: ProgressSink) -> None:
    depth, total = int(match.group(1)), int(match.group(2))
    sink.progress(depth, total, f"refinement round {depth}/{total}")


LOG_PARSERS = (LogParser(re.compile(r"Iteration Depth: (\d+)/(\d+)"), _read_depth),)


COPRO_ADAPTER = OptimizerAdapter(
    name="COPRO",
    params=(
        ParamSpec("breadth", int, 10, "instruction candidates per round", 2, 64),
        ParamSpec("depth", int, 3, "rounds of refinement", 1, 20),
        ParamSpec("init_temperature", float, 1.4, "instruction proposal temperature", 0.0, 2.0),
        NUM_THREADS,
    ),
    needs_valset=False,
    doc="Refines each predictor's instruction by coordinate ascent, scored on the trainset.",
    build=_copro_build,
    compile=_copro_compile,
    planned_trials=_copro_planned,
    describe=describe_instructions,
    prompt_lm_role="proposes the instructions",
    log_parsers=LOG_PARSERS,
)
