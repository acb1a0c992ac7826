"""GEPA: evolves each predictor's instruction by reflecting on failures (with textual
feedback), keeping a Pareto front of candidates scored on the valset.

Its progress comes from GEPA's own callbacks (``GepaProgress``, passed as
``gepa_kwargs={"callbacks": [...]}``): each valset evaluation of a candidate is a
``TrialCompleted``; candidate selection, proposed instructions and acceptance are
``Progress``. GEPA's minibatch ``Evaluate`` calls are not trials (``trials_from_evaluate``
is off). A cancel reaches it through its stop callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dspy
from dspy.teleprompt import GEPA
from dspy.teleprompt.teleprompt import Teleprompter

from optimizer_svc.optimizers.base import (
    NUM_THREADS,
    CompileInputs,
    InvalidOptimizerParams,
    Metric,
    OptimizerAdapter,
    ParamSpec,
    Preset,
    ProgressSink,
    describe_instructions,
    one_line,
)
from optimizer_svc.progress.predictors import instruction_changes


def _gepa_check(p: dict[str, Any]) -> None:
    if p["auto"] is not None and p["max_metric_calls"] is not None:
        raise InvalidOptimizerParams(
            "params.auto", "GEPA takes either auto or max_metric_calls, not both (set auto to null)"
        )
    if p["auto"] is None and p["max_metric_calls"] is None:
        raise InvalidOptimizerParams("params.max_metric_calls", "is required when auto is null, or set auto")


def feedback_metric(metric: Metric) -> Callable[..., dspy.Prediction]:
    """The job's metric as GEPA's five-argument feedback metric.

    The feedback names each output field the prediction got wrong, with the expected value:
    that is what the reflection LM reads when it rewrites the instruction.
    """

    def gepa_metric(
        gold: dspy.Example,
        pred: Any,
        trace: Any = None,
        pred_name: str | None = None,
        pred_trace: Any = None,
    ) -> dspy.Prediction:
        score = float(metric(gold, pred, None))
        wrong = []
        for key in gold.labels().keys():
            got = pred.get(key) if hasattr(pred, "get") else None
            if str(got).strip() != str(gold[key]).strip():
                wrong.append(f"{key}: expected {_clip(gold[key])!r}, got {_clip(got)!r}")
        feedback = f"Score {score:g}. " + ("; ".join(wrong) if wrong else "All outputs are correct.")
        return dspy.Prediction(score=score, feedback=feedback)

    return gepa_metric


def _clip(value: Any, n: int = 200) -> str:
    text = str(value)
    return text if len(text) <= n else text[:n] + "..."


class _CancelStopper:
    """GEPA's stop-callback protocol: called between iterations, True ends the run."""

    def __init__(self, token: Any) -> None:
        self.token = token

    def __call__(self, gepa_state: Any) -> bool:
        return bool(self.token is not None and self.token.cancelled)


class GepaProgress:
    """GEPA's callback protocol (``gepa.core.callbacks.GEPACallback``: duck-typed, one event dict
    per call) -> job events. GEPA calls these on the compile thread and swallows ``Exception``
    from them; cancellation goes through its stop callback and our CancelCallback instead.
    """

    def __init__(self, capture: ProgressSink, describe: Callable[[dspy.Module], str]) -> None:
        self.capture = capture
        self.describe = describe
        self.seed: dict[str, str] = {}  # candidate 0's instructions: what later ones changed

    def on_valset_evaluated(self, event: dict[str, Any]) -> None:
        candidate = event.get("candidate") or {}
        text = " || ".join(str(v) for v in candidate.values())
        idx = event.get("candidate_idx")
        label = "seed" if idx == 0 else f"candidate {idx}"
        evaluated, total = event.get("num_examples_evaluated"), event.get("total_valset_size")
        partial = f" ({evaluated}/{total} examples)" if evaluated != total else ""
        if idx == 0:
            self.seed = {str(k): str(v) for k, v in candidate.items()}
        self.capture.record_trial(
            float(event.get("average_score", 0.0)),
            f"{label}: {one_line(text)}{partial}",
            predictors=instruction_changes(candidate, self.seed),
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
            self.capture.progress(
                i, 0, f"iteration {i}: proposed instruction{where}: {one_line(text)}", predictor=str(name)
            )

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


def _gepa_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    callbacks = [GepaProgress(inputs.capture, describe_instructions)] if inputs.capture is not None else []
    return GEPA(
        metric=feedback_metric(inputs.metric),
        auto=p["auto"],
        max_metric_calls=p["max_metric_calls"],
        reflection_minibatch_size=p["reflection_minibatch_size"],
        candidate_selection_strategy=p["candidate_selection_strategy"],
        # GEPA insists on a reflection LM: the prompt LM if the job has one, else the task LM.
        reflection_lm=inputs.prompt_lm or dspy.settings.lm,
        skip_perfect_score=p["skip_perfect_score"],
        use_merge=p["use_merge"],
        max_merge_invocations=p["max_merge_invocations"],
        num_threads=p["num_threads"],
        seed=p["seed"],
        warn_on_score_mismatch=False,
        gepa_kwargs={"callbacks": callbacks, "stop_callbacks": [_CancelStopper(inputs.cancel)]},
    )


def _gepa_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    return optimizer.compile(inputs.student, trainset=inputs.trainset, valset=inputs.valset or None)


GEPA_ADAPTER = OptimizerAdapter(
    name="GEPA",
    params=(
        ParamSpec(
            "auto",
            str,
            "light",
            "budget preset; null to set max_metric_calls yourself",
            choices=("light", "medium", "heavy"),
            nullable=True,
        ),
        ParamSpec("max_metric_calls", int, None, "budget: metric calls in all", 1, 1_000_000, nullable=True),
        ParamSpec("reflection_minibatch_size", int, 3, "examples reflected on per iteration", 1, 64),
        ParamSpec(
            "candidate_selection_strategy",
            str,
            "pareto",
            "which candidate to mutate next",
            choices=("pareto", "current_best"),
        ),
        ParamSpec("skip_perfect_score", bool, True, "skip reflecting on minibatches already perfect"),
        ParamSpec("use_merge", bool, True, "also merge candidates that do well on different examples"),
        ParamSpec("max_merge_invocations", int, 5, "merge attempts at most", 0, 100),
        ParamSpec("seed", int, 0, "random seed", 0, 2**31 - 1),
        NUM_THREADS,
    ),
    needs_valset=True,
    doc="Evolves each predictor's instruction by reflecting on failures (with textual feedback) "
    "and keeps a Pareto front of candidates scored on the valset.",
    build=_gepa_build,
    compile=_gepa_compile,
    planned_trials=lambda _inputs: 0,  # iterations run until the metric-call budget is spent
    describe=describe_instructions,
    check=_gepa_check,
    replaces_auto=("max_metric_calls",),
    rules="exactly one of auto and max_metric_calls",
    prompt_lm_role="reflects on failures and rewrites instructions (default: the task LM)",
    trials_from_evaluate=False,
    presets=(
        Preset(
            "gepa-light",
            "GEPA",
            {"auto": "light", "reflection_minibatch_size": 3},
            "GEPA's light budget: reflective instruction evolution; give it a prompt_lm that writes well.",
        ),
    ),
)
