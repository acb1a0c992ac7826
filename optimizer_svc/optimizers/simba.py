"""SIMBA: stochastic introspective mini-batch ascent. It finds examples with high output
variance and adds a successful trace as a demo or a self-written rule; picks the best on the
trainset.

Its progress: the "Starting batch" / "Invoking strategy" / "Scores after" / "Final trainset
scores" lines of the dspy logger (minibatch scores are trials that do not count for the
best score; the finalists' whole-trainset scores do).
"""

from __future__ import annotations

import ast
import re

import dspy
from dspy.teleprompt import SIMBA
from dspy.teleprompt.teleprompt import Teleprompter

from optimizer_svc.optimizers.base import (
    NUM_THREADS,
    CompileInputs,
    LogParser,
    OptimizerAdapter,
    ParamSpec,
    ProgressSink,
    describe_instructions,
    one_line,
)


def _simba_bsize(inputs: CompileInputs) -> int:
    # SIMBA asserts len(trainset) >= bsize; a batch as large as the trainset is the whole set.
    return min(inputs.params["bsize"], len(inputs.trainset))


def _simba_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    return SIMBA(
        metric=inputs.metric,
        bsize=_simba_bsize(inputs),
        num_candidates=p["num_candidates"],
        max_steps=p["max_steps"],
        max_demos=p["max_demos"],
        prompt_model=inputs.prompt_lm,  # None: dspy.settings.lm, read in the constructor
        num_threads=p["num_threads"],
        temperature_for_sampling=p["temperature_for_sampling"],
        temperature_for_candidates=p["temperature_for_candidates"],
    )


def _simba_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    return optimizer.compile(inputs.student, trainset=inputs.trainset, seed=inputs.params["seed"])


def simba_planned(inputs: CompileInputs) -> int:
    """Candidates SIMBA scores (dspy 3.4.1): per step min(bsize, num_candidates + 1) on the
    minibatch, then the distinct evenly spaced winners on the whole trainset."""
    p = inputs.params
    n = p["num_candidates"] + 1
    per_step = min(_simba_bsize(inputs), n)
    m = p["max_steps"]  # winning programs beyond the student: one per step
    final = len(dict.fromkeys(round(i * m / (n - 1)) for i in range(n)))
    return m * per_step + final


# --------------------------------------------------------------------------------------
# Progress: SIMBA scores its candidates with dspy.Parallel, not Evaluate, so its log lines
# are its only score report
# --------------------------------------------------------------------------------------

_NUMPY_SCALAR_RE = re.compile(r"np\.\w+\(([^()]*)\)")


def _scores(text: str) -> list[float]:
    """'0.5, np.float64(0.25)' -> [0.5, 0.25] (numpy 2 reprs its scalars)."""
    cleaned = _NUMPY_SCALAR_RE.sub(r"\1", text).strip()
    if not cleaned:
        return []
    values = ast.literal_eval(f"[{cleaned}]")
    return [float(v) for v in values]


def _read_batch(match: re.Match[str], sink: ProgressSink) -> None:
    step, total = int(match.group(1)), int(match.group(2))
    sink.progress(step, total, f"SIMBA step {step}/{total}: sampling trajectories")


def _read_strategy(match: re.Match[str], sink: ProgressSink) -> None:
    step, strategy = int(match.group(1)), match.group(2).strip("_")
    sink.progress(step, 0, f"SIMBA step {step}: new candidate by {strategy}")


def _read_advice(match: re.Match[str], sink: ProgressSink) -> None:
    # SIMBA's append_a_rule: one rule (advice) per predictor of the program, logged by name
    name = match.group(1)
    sink.progress(0, 0, f"rule for {name}: {one_line(match.group(2))}", predictor=name)


def _read_scores(match: re.Match[str], sink: ProgressSink) -> None:
    step = int(match.group(1))
    for i, score in enumerate(_scores(match.group(2)), 1):
        # Minibatch scores: like MIPROv2's, they do not count for best_score.
        sink.record_trial(score, f"step {step} candidate {i} (minibatch)", counts_for_best=False)


def _read_final(match: re.Match[str], sink: ProgressSink) -> None:
    for i, score in enumerate(_scores(match.group(1)), 1):
        sink.record_trial(score, f"finalist {i} (whole trainset)")


LOG_PARSERS = (
    LogParser(re.compile(r"^Starting batch (\d+) of (\d+)\."), _read_batch),
    LogParser(re.compile(r"^Batch (\d+): Invoking strategy: (\w+)"), _read_strategy),
    LogParser(re.compile(r"^Advice for ([^\s:]+): (.*)", re.S), _read_advice),
    LogParser(re.compile(r"^Scores after (\d+) batches: \[(.*?)\], Best:"), _read_scores),
    LogParser(re.compile(r"^Final trainset scores: \[(.*?)\], Best:"), _read_final),
)


SIMBA_ADAPTER = OptimizerAdapter(
    name="SIMBA",
    params=(
        ParamSpec("bsize", int, 32, "minibatch size (capped at the trainset size)", 1, 1000),
        ParamSpec("num_candidates", int, 6, "new candidate programs per step", 1, 32),
        ParamSpec("max_steps", int, 8, "optimization steps", 1, 100),
        ParamSpec("max_demos", int, 4, "demos per predictor at most (0: rules only)", 0, 32),
        ParamSpec(
            "temperature_for_sampling",
            float,
            0.2,
            "softmax temperature picking programs to run",
            0.0,
            2.0,
        ),
        ParamSpec(
            "temperature_for_candidates",
            float,
            0.2,
            "softmax temperature picking programs to improve",
            0.0,
            2.0,
        ),
        ParamSpec("seed", int, 0, "random seed", 0, 2**31 - 1),
        NUM_THREADS,
    ),
    needs_valset=False,
    doc="Stochastic introspective mini-batch ascent: finds examples with high output variance and "
    "adds a successful trace as a demo or a self-written rule; picks the best on the trainset.",
    build=_simba_build,
    compile=_simba_compile,
    planned_trials=simba_planned,
    describe=describe_instructions,
    prompt_lm_role="writes the improvement rules",
    log_parsers=LOG_PARSERS,
)
