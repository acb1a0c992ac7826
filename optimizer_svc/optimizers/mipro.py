"""MIPROv2: proposes instructions, bootstraps demo sets, and searches their combinations.

Its progress: the "==> STEP n: ... <==" phase lines of the dspy logger, one ``Progress`` per
instruction its ``GenerateModuleInstruction`` proposes, and every ``Evaluate`` a trial
(minibatch ones marked, and not counted for the best score, as MIPROv2 itself does).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import dspy
from dspy.teleprompt import MIPROv2
from dspy.teleprompt.teleprompt import Teleprompter

from optimizer_svc.optimizers.base import (
    MAX_BOOTSTRAPPED,
    MAX_LABELED,
    METRIC_THRESHOLD,
    NUM_THREADS,
    CompileInputs,
    InvalidOptimizerParams,
    LogParser,
    OptimizerAdapter,
    ParamSpec,
    Preset,
    ProgressSink,
    Proposer,
    describe_instructions,
    one_line,
)

_MIPRO_AUTO_N = {"light": 6, "medium": 12, "heavy": 18}  # dspy AUTO_RUN_SETTINGS[...]["n"]
_MIPRO_AUTO_VAL = {"light": 100, "medium": 300, "heavy": 1000}  # ... ["val_size"]


def _mipro_check(p: dict[str, Any]) -> None:
    if p["auto"] is not None:
        for name in ("num_trials", "num_candidates"):
            if p[name] is not None:
                raise InvalidOptimizerParams(
                    "params.auto", f"MIPROv2 takes either auto or {name}, not both (set auto to null)"
                )
    else:
        for name, other in (("num_trials", "num_candidates"), ("num_candidates", "num_trials")):
            if p[name] is None:
                raise InvalidOptimizerParams(
                    f"params.{name}", f"is required when auto is null (with {other}), or set auto"
                )


@dataclass(frozen=True)
class MiproPlan:
    num_trials: int
    valset_size: int
    minibatch: bool
    num_instruct_candidates: int
    num_fewshot_candidates: int
    planned_trials: int  # evaluations MIPROv2 runs, counting the default program's


def mipro_plan(inputs: CompileInputs) -> MiproPlan:
    """Mirror MIPROv2.compile's own arithmetic (dspy 3.4.1), so Started can announce the trials."""
    p = inputs.params
    n_predictors = len(inputs.student.predictors())
    zeroshot = p["max_bootstrapped_demos"] == 0 and p["max_labeled_demos"] == 0
    if inputs.valset:
        valset_size = len(inputs.valset)
    else:  # MIPROv2 keeps the last 80% of the trainset for validation
        valset_size = min(1000, max(1, int(len(inputs.trainset) * 0.8)))
    if p["auto"] is not None:
        n = _MIPRO_AUTO_N[p["auto"]]
        valset_size = min(valset_size, _MIPRO_AUTO_VAL[p["auto"]])
        minibatch = valset_size > 50
        instruct = n if zeroshot else int(n * 0.5)
        fewshot = n
        num_vars = n_predictors * (1 if zeroshot else 2)
        num_trials = int(max(2 * num_vars * math.log2(n), 1.5 * n))
    else:
        instruct = fewshot = p["num_candidates"]
        num_trials = p["num_trials"]
        minibatch = _mipro_minibatch(p, valset_size)
    if minibatch:
        steps = p["minibatch_full_eval_steps"]
        planned = num_trials + num_trials // steps + 1 + (1 if num_trials % steps else 0)
    else:
        planned = num_trials + 1
    return MiproPlan(num_trials, valset_size, minibatch, instruct, fewshot, planned)


def _mipro_minibatch(p: dict[str, Any], valset_size: int) -> bool:
    # DSPy refuses minibatch_size > len(valset); a minibatch that large is a full evaluation anyway.
    return bool(p["minibatch"]) and valset_size > p["minibatch_size"]


def _mipro_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    return MIPROv2(
        metric=inputs.metric,
        prompt_model=inputs.prompt_lm,  # None: dspy.settings.lm, i.e. the job's LM
        max_bootstrapped_demos=p["max_bootstrapped_demos"],
        max_labeled_demos=p["max_labeled_demos"],
        auto=p["auto"],
        num_candidates=p["num_candidates"],
        num_threads=p["num_threads"],
        seed=p["seed"],
        init_temperature=p["init_temperature"],
        metric_threshold=p["metric_threshold"],
        verbose=False,
    )


def _mipro_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    p = inputs.params
    plan = mipro_plan(inputs)
    kwargs: dict[str, Any] = {}
    if p["auto"] is None:
        kwargs["num_trials"] = p["num_trials"]
        kwargs["minibatch"] = plan.minibatch
    return optimizer.compile(
        inputs.student,
        trainset=inputs.trainset,
        valset=inputs.valset or None,
        minibatch_size=p["minibatch_size"],
        minibatch_full_eval_steps=p["minibatch_full_eval_steps"],
        **kwargs,
    )


# --------------------------------------------------------------------------------------
# Progress: its three phases in the dspy log, and each proposed instruction
# --------------------------------------------------------------------------------------


def _read_step(match: re.Match[str], sink: ProgressSink) -> None:
    step = int(match.group(1))
    sink.progress(step, 3, f"step {step}/3: {match.group(2).lower()}")


LOG_PARSERS = (LogParser(re.compile(r"==> STEP (\d+): (.+?) <=="), _read_step),)


def _proposed(n: int, outputs: Any) -> str:
    text = str(getattr(outputs, "proposed_instruction", "") or "")
    return f"proposed instruction {n}: {one_line(text)}"


def _proposed_for(arguments: dict[str, Any]) -> str:
    """MIPROv2's GroundedProposer calls GenerateModuleInstruction(program=..., pred_i=...) once
    per instruction it proposes for predictor ``pred_i`` of ``program``."""
    program, index = arguments.get("program"), arguments.get("pred_i")
    if not isinstance(program, dspy.Module) or not isinstance(index, int):
        return ""
    names = [name for name, _ in program.named_predictors()]
    return names[index] if 0 <= index < len(names) else ""


PROPOSERS = (Proposer("GenerateModuleInstruction", _proposed, predictor=_proposed_for),)


MIPRO = OptimizerAdapter(
    name="MIPROv2",
    params=(
        ParamSpec(
            "auto",
            str,
            "light",
            "run size preset; null to set num_candidates and num_trials yourself",
            choices=("light", "medium", "heavy"),
            nullable=True,
        ),
        ParamSpec("num_candidates", int, None, "instruction and demo-set candidates", 2, 64, nullable=True),
        ParamSpec("num_trials", int, None, "Bayesian optimization trials", 1, 500, nullable=True),
        ParamSpec("max_bootstrapped_demos", int, 4, MAX_BOOTSTRAPPED.doc, 0, 64),
        ParamSpec("max_labeled_demos", int, 4, MAX_LABELED.doc, 0, 256),
        ParamSpec(
            "minibatch",
            bool,
            True,
            "score trials on minibatches (when the valset exceeds minibatch_size)",
        ),
        ParamSpec("minibatch_size", int, 35, "examples per minibatch", 1, 10_000),
        ParamSpec(
            "minibatch_full_eval_steps",
            int,
            5,
            "full evaluation of the best every N minibatch trials",
            1,
            100,
        ),
        ParamSpec("seed", int, 9, "random seed", 0, 2**31 - 1),
        ParamSpec("init_temperature", float, 1.0, "instruction proposal temperature", 0.0, 2.0),
        METRIC_THRESHOLD,
        NUM_THREADS,
    ),
    needs_valset=True,
    doc="Proposes instructions, bootstraps demo sets, and searches their combinations with Optuna.",
    build=_mipro_build,
    compile=_mipro_compile,
    planned_trials=lambda inputs: mipro_plan(inputs).planned_trials,
    describe=describe_instructions,
    check=_mipro_check,
    replaces_auto=("num_trials", "num_candidates"),
    rules="auto, or else both num_candidates and num_trials",
    prompt_lm_role="proposes the instructions",
    log_parsers=LOG_PARSERS,
    proposers=PROPOSERS,
    presets=(
        Preset(
            "balanced-mipro",
            "MIPROv2",
            {"auto": "light", "max_bootstrapped_demos": 4, "max_labeled_demos": 4},
            "MIPROv2's light run: instructions and demo sets searched jointly in about 10 trials.",
        ),
        Preset(
            "thorough-mipro",
            "MIPROv2",
            {"auto": "medium", "max_bootstrapped_demos": 4, "max_labeled_demos": 8},
            "MIPROv2's medium run: more candidates and trials, a larger validation sample.",
        ),
    ),
)
