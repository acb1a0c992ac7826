"""BetterTogether: prompt optimizers run in sequence, each starting from the previous result;
keeps the program that scores best on the valset (10% of the trainset if none). Weight
optimizers (fine-tuning) are refused: this service runs prompt optimizers only.

Its progress: its own "==> STEP i/n: OPTIMIZER <==" lines, and whatever its steps report
(their log lines and proposers are its own too: a copro step's refinement rounds, a mipro
step's phases and proposed instructions).
"""

from __future__ import annotations

import re
from typing import Any

import dspy
from dspy.teleprompt import BetterTogether
from dspy.teleprompt.teleprompt import Teleprompter

from optimizer_svc.optimizers.base import (
    MAX_BOOTSTRAPPED,
    MAX_LABELED,
    NUM_THREADS,
    CompileInputs,
    InvalidOptimizerParams,
    LogParser,
    OptimizerAdapter,
    ParamSpec,
    ProgressSink,
    describe_instructions,
    show_value,
)
from optimizer_svc.optimizers.bootstrap import BOOTSTRAP, LABELED, RANDOM_SEARCH
from optimizer_svc.optimizers.copro import COPRO_ADAPTER
from optimizer_svc.optimizers.mipro import MIPRO

BT_STEPS = {
    "p": "BootstrapFewShotWithRandomSearch",
    "bootstrap": "BootstrapFewShot",
    "labeled": "LabeledFewShot",
    "copro": "COPRO",
    "mipro": "MIPROv2",
}
_BT_WEIGHT_STEPS = {"w", "finetune", "bootstrapfinetune", "grpo", "ft"}
_STEP_ADAPTERS = {a.name: a for a in (RANDOM_SEARCH, BOOTSTRAP, LABELED, COPRO_ADAPTER, MIPRO)}


def bt_strategy(value: str) -> list[str]:
    steps = [s.strip() for s in value.split("->")]
    if not value.strip() or any(not s for s in steps):
        raise InvalidOptimizerParams(
            "params.strategy", f"must be steps separated by ' -> ', got {show_value(value)}"
        )
    for step in steps:
        if step.lower() in _BT_WEIGHT_STEPS:
            raise InvalidOptimizerParams(
                "params.strategy",
                f'step "{step}" is a weight optimizer (fine-tuning), which this service does not run; '
                f"use prompt optimizers only: {', '.join(BT_STEPS)}",
            )
        if step not in BT_STEPS:
            raise InvalidOptimizerParams(
                "params.strategy", f'unknown step "{step}"; known: {", ".join(BT_STEPS)}'
            )
    return steps


def _bt_check(p: dict[str, Any]) -> None:
    bt_strategy(p["strategy"])


def _bt_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    steps = set(bt_strategy(p["strategy"]))
    shared = {"num_threads": p["num_threads"]}
    demos = {
        "max_bootstrapped_demos": p["max_bootstrapped_demos"],
        "max_labeled_demos": p["max_labeled_demos"],
    }
    step_params = {
        "p": {**demos, **shared, "num_candidate_programs": p["num_candidate_programs"]},
        "bootstrap": demos,
        "labeled": {"k": p["max_labeled_demos"], **shared},
        "copro": {"breadth": p["breadth"], "depth": p["depth"], **shared},
        "mipro": {**demos, **shared, "auto": p["mipro_auto"], "seed": p["seed"]},
    }
    optimizers = {}
    for step in steps:
        adapter = _STEP_ADAPTERS[BT_STEPS[step]]
        sub = CompileInputs(
            student=inputs.student,
            trainset=inputs.trainset,
            valset=inputs.valset,
            metric=inputs.metric,
            params=adapter.validate(step_params[step]),
            prompt_lm=inputs.prompt_lm,
        )
        optimizers[step] = adapter.build(sub)
    return BetterTogether(metric=inputs.metric, **optimizers)


def _bt_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    p = inputs.params
    student = inputs.student.deepcopy()
    # BetterTogether insists on an LM on every predictor (for weight optimizers' launch/kill):
    # the task LM, which is what they would use anyway. Saved states never keep it.
    student.set_lm(dspy.settings.lm)
    compiled = optimizer.compile(
        student,
        trainset=list(inputs.trainset),  # BetterTogether shuffles it in place
        valset=inputs.valset or None,
        strategy=" -> ".join(bt_strategy(p["strategy"])),
        valset_ratio=0.1 if not inputs.valset else 0.0,
        num_threads=p["num_threads"],
        seed=p["seed"],
        optimizer_compile_args={
            # COPRO scores on the trainset; BetterTogether would not pass these through otherwise.
            step: {"eval_kwargs": {"num_threads": p["num_threads"], "display_progress": False}}
            for step in bt_strategy(p["strategy"])
            if step == "copro"
        },
    )
    if getattr(compiled, "flag_compilation_error_occurred", False):
        # BetterTogether logs a failed step and returns the best program so far: fail instead.
        raise RuntimeError("BetterTogether: a strategy step failed (see the optimizer log)")
    return compiled


# --------------------------------------------------------------------------------------
# Progress: its "==> STEP i/n: OPTIMIZER <==" lines, and what its steps report of their own
# --------------------------------------------------------------------------------------

# BetterTogether logs each step's teleprompter class name upper-cased: the real name back
_TELEPROMPTERS = {name.upper(): name for name in dir(dspy.teleprompt) if not name.startswith("_")}


def _read_step(match: re.Match[str], sink: ProgressSink) -> None:
    step, total = int(match.group(1)), int(match.group(2))
    name = _TELEPROMPTERS.get(match.group(3), match.group(3))
    sink.progress(step, total, f"strategy step {step}/{total}: {name}")


# the steps' own lines and proposals (COPRO's rounds, MIPROv2's phases and instructions)
LOG_PARSERS = (
    *MIPRO.log_parsers,
    *COPRO_ADAPTER.log_parsers,
    LogParser(re.compile(r"==> STEP (\d+)/(\d+): (\w+)"), _read_step),
)
PROPOSERS = tuple(p for step in _STEP_ADAPTERS.values() for p in step.proposers)


BETTER_TOGETHER = OptimizerAdapter(
    name="BetterTogether",
    params=(
        ParamSpec(
            "strategy",
            str,
            "p -> copro",
            "prompt optimizers run in turn, ' -> '-separated: p (random search), bootstrap, "
            "labeled, copro, mipro; weight optimizers (fine-tuning) are refused",
        ),
        ParamSpec("max_bootstrapped_demos", int, 4, MAX_BOOTSTRAPPED.doc, 0, 64),
        ParamSpec("max_labeled_demos", int, 4, MAX_LABELED.doc, 0, 256),
        ParamSpec("num_candidate_programs", int, 4, "random-search candidates of step p", 1, 256),
        ParamSpec("breadth", int, 4, "COPRO instruction candidates per round", 2, 64),
        ParamSpec("depth", int, 2, "COPRO rounds", 1, 20),
        ParamSpec("mipro_auto", str, "light", "MIPROv2 run size", choices=("light", "medium", "heavy")),
        ParamSpec("seed", int, 0, "random seed (trainset shuffles, MIPROv2)", 0, 2**31 - 1),
        NUM_THREADS,
    ),
    needs_valset=True,
    doc="Runs prompt optimizers in sequence, each starting from the previous result, and keeps "
    "the program that scores best on the valset (10% of the trainset if none).",
    build=_bt_build,
    compile=_bt_compile,
    planned_trials=lambda _inputs: 0,  # depends on the steps' own searches
    describe=describe_instructions,
    check=_bt_check,
    rules="strategy steps: p, bootstrap, labeled, copro, mipro (no weight optimizers)",
    prompt_lm_role="proposes instructions in copro and mipro steps",
    log_parsers=LOG_PARSERS,
    proposers=PROPOSERS,
)
