"""InferRules: bootstraps demos, then has the LM induce natural-language rules from the
training examples into the instruction; keeps the rule set that scores best.

Its progress: one ``Progress`` per rule set its ``RulesInductionProgram`` writes, the demo
bootstrapping as BootstrapFewShot's, and each rule set's ``Evaluate`` a trial.
"""

from __future__ import annotations

from typing import Any

import dspy
from dspy.teleprompt import InferRules
from dspy.teleprompt.teleprompt import Teleprompter

from optimizer_svc.optimizers.base import (
    MAX_BOOTSTRAPPED,
    MAX_LABELED,
    MAX_ROUNDS,
    METRIC_THRESHOLD,
    NUM_THREADS,
    CompileInputs,
    OptimizerAdapter,
    ParamSpec,
    Proposer,
    describe_instructions,
    one_line,
)


def _rules_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    optimizer = InferRules(
        num_candidates=p["num_candidates"],
        num_rules=p["num_rules"],
        num_threads=p["num_threads"],
        metric=inputs.metric,
        metric_threshold=p["metric_threshold"],
        max_bootstrapped_demos=p["max_bootstrapped_demos"],
        max_labeled_demos=p["max_labeled_demos"],
        max_rounds=p["max_rounds"],
    )
    if inputs.prompt_lm is not None:
        # Only the rule writer: teacher_settings would also move the demo bootstrapping.
        optimizer.rules_induction_program.teacher_settings = {"lm": inputs.prompt_lm}
    return optimizer


def _rules_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    # Without a valset InferRules keeps the first half of the trainset and scores on the rest.
    return optimizer.compile(inputs.student, trainset=inputs.trainset, valset=inputs.valset or None)


def _induced(n: int, outputs: Any) -> str:
    return f"induced rule set {n}: {one_line(outputs)}"  # its forward returns the rules text itself


INFER_RULES = OptimizerAdapter(
    name="InferRules",
    params=(
        ParamSpec("num_candidates", int, 4, "rule sets induced and scored", 1, 64),
        ParamSpec("num_rules", int, 10, "rules asked for per rule set", 1, 50),
        MAX_BOOTSTRAPPED,
        MAX_LABELED,
        MAX_ROUNDS,
        METRIC_THRESHOLD,
        NUM_THREADS,
    ),
    needs_valset=True,
    doc="Bootstraps demos, then has the LM induce natural-language rules from the training "
    "examples into the instruction; keeps the rule set that scores best.",
    build=_rules_build,
    compile=_rules_compile,
    planned_trials=lambda inputs: inputs.params["num_candidates"],
    describe=describe_instructions,
    prompt_lm_role="induces the rules",
    proposers=(Proposer("RulesInductionProgram", _induced),),
)
