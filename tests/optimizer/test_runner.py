"""run_job on real DSPy optimizers and the offline engine: live progress, scores, usage, cancel."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import dspy
import pytest

import dspyops.offline.engine as lm_module
from dspyops.connections import ResolvedLM
from dspyops.datasets import load_dataset, split
from dspyops.lm import LMConfig
from dspyops.programs.spec import ProgramSpec
from optimizer_svc.cancel import CancelToken, JobCancelled
from optimizer_svc.jobs.runner import JobResult, JobSpec, run_job
from optimizer_svc.optimizers.base import InvalidOptimizerParams
from optimizer_svc.progress.events import BaselineEvaluated, JobEvent, Progress, Started, TrialCompleted

SPEC = ProgramSpec(module="Predict", signature="text -> label")

TELEPROMPTERS = {
    "LabeledFewShot": dspy.LabeledFewShot,
    "BootstrapFewShot": dspy.BootstrapFewShot,
    "BootstrapFewShotWithRandomSearch": dspy.BootstrapFewShotWithRandomSearch,
    "MIPROv2": dspy.MIPROv2,
    "COPRO": dspy.COPRO,
}

# Tiny but real runs: each takes about a second on the offline engine.
PARAMS: dict[str, dict[str, Any]] = {
    "LabeledFewShot": {"k": 8},
    "BootstrapFewShot": {"max_bootstrapped_demos": 4, "max_labeled_demos": 4},
    "BootstrapFewShotWithRandomSearch": {"num_candidate_programs": 3, "max_labeled_demos": 4},
    "MIPROv2": {"auto": "light", "max_labeled_demos": 2},
    "COPRO": {"breadth": 3, "depth": 2},
}
MULTI_TRIAL = {"BootstrapFewShotWithRandomSearch", "MIPROv2", "COPRO"}
FEW_SHOT = {"LabeledFewShot", "BootstrapFewShot", "BootstrapFewShotWithRandomSearch", "MIPROv2"}


@pytest.fixture(scope="module")
def data() -> tuple[list[dspy.Example], list[dspy.Example]]:
    train, val = split(load_dataset("support_tickets"), val_fraction=0.3, seed=0)
    return train[:16], val[:12]


@dataclass
class Recorded:
    event: JobEvent
    during_compile: bool
    thread: str


@dataclass
class Probe:
    """Records events with whether the optimizer's compile was still running, and engine calls."""

    compile_done: threading.Event = field(default_factory=threading.Event)
    events: list[Recorded] = field(default_factory=list)
    engine_calls: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, event: JobEvent) -> None:
        with self.lock:
            self.events.append(
                Recorded(event, not self.compile_done.is_set(), threading.current_thread().name)
            )

    def of(self, kind: type) -> list[Any]:
        return [r.event for r in self.events if isinstance(r.event, kind)]


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Probe:
    probe = Probe()
    original = lm_module.OfflineEngine.complete

    def counted(self: lm_module.OfflineEngine, request: Any) -> Any:
        with probe.lock:
            probe.engine_calls.append(time.monotonic())
        return original(self, request)

    monkeypatch.setattr(lm_module.OfflineEngine, "complete", counted)
    return probe


def watch_compile(monkeypatch: pytest.MonkeyPatch, probe: Probe, optimizer: str) -> None:
    """Mark the moment the optimizer's own compile returns (the wrapper still calls DSPy's)."""
    cls = TELEPROMPTERS[optimizer]
    original = cls.compile

    def compile_and_mark(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            probe.compile_done.set()

    monkeypatch.setattr(cls, "compile", compile_and_mark)


def job(
    optimizer: str, params: dict[str, Any], train: list, val: list, lm: LMConfig | None = None
) -> JobSpec:
    return JobSpec(
        job_id="t",
        spec=SPEC,
        lm=lm or LMConfig(),
        optimizer=optimizer,
        params=params,
        metric="exact_match",
        trainset=train,
        valset=val,
    )


@pytest.mark.parametrize("optimizer", list(PARAMS))
def test_progress_is_live_and_scores_are_sane(
    optimizer: str, data: tuple[list, list], probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, val = data
    watch_compile(monkeypatch, probe, optimizer)
    result = run_job(job(optimizer, PARAMS[optimizer], train, val), probe.emit, CancelToken())

    kinds = [type(r.event).__name__ for r in probe.events]
    assert kinds[:2] == ["Started", "BaselineEvaluated"], kinds
    started, baseline = probe.events[0].event, probe.events[1].event
    assert isinstance(started, Started) and started.optimizer == optimizer
    assert isinstance(baseline, BaselineEvaluated) and baseline.examples == len(val)
    assert baseline.score == result.baseline_score

    trials = probe.of(TrialCompleted)
    assert trials and result.trials == len(trials)
    assert [t.trial for t in trials] == list(range(1, len(trials) + 1))
    assert all(0.0 <= t.score <= 1.0 and 0.0 <= t.best_score <= 1.0 for t in trials)
    bests = [t.best_score for t in trials]
    assert bests == sorted(bests), "best_score must never decrease"
    assert all(t.candidate for t in trials)

    during = [r.event for r in probe.events if r.during_compile]
    if optimizer in MULTI_TRIAL:
        # One trial per candidate the optimizer scored, each reported while the compile ran.
        assert len(trials) == started.planned_trials >= 3
        assert all(r.during_compile for r in probe.events if isinstance(r.event, TrialCompleted))
    else:
        assert len(trials) == 1 and started.planned_trials == 1
        assert any(isinstance(e, Progress) for e in during), "per-demo progress must arrive during compile"
    assert all(0 <= p.step and (p.total == 0 or p.step <= p.total) for p in probe.of(Progress))

    if optimizer in FEW_SHOT:
        assert result.final_score > result.baseline_score
        assert result.program is not None
        assert any(p.demos for p in result.program.predictors()) and result.state["demos"]
    assert 0.0 <= result.final_score <= 1.0

    # Usage counts every LM call, including those made on Evaluate's worker threads. COPRO
    # samples proposals with n > 1, which DSPy sends to this engine as n requests per call.
    if optimizer == "COPRO":
        assert 0 < result.usage.lm_calls < len(probe.engine_calls)
    else:
        assert result.usage.lm_calls == len(probe.engine_calls) > 0
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0


def test_bootstrap_progress_counts_examples(data: tuple[list, list], probe: Probe) -> None:
    train, val = data
    run_job(job("BootstrapFewShot", {"max_bootstrapped_demos": 3}, train, val), probe.emit, CancelToken())
    progress = probe.of(Progress)
    assert [p.step for p in progress] == list(range(1, len(progress) + 1))
    assert all(p.total == len(train) for p in progress)
    assert progress[-1].message.endswith(f"bootstrapped 3 demos from {progress[-1].step} examples")


def test_mipro_reports_phases_and_instructions(data: tuple[list, list], probe: Probe) -> None:
    train, val = data
    params = {"num_candidates": 3, "num_trials": 4, "max_labeled_demos": 2, "num_threads": 1}
    run_job(job("MIPROv2", params, train, val), probe.emit, CancelToken())
    messages = [p.message for p in probe.of(Progress)]
    phases = [m for m in messages if m.startswith("step ")]
    assert [m.split(":")[0] for m in phases] == ["step 1/3", "step 2/3", "step 3/3"]
    assert any(m.startswith("proposed instruction 1: ") for m in messages)
    assert any("bootstrapped" in m for m in messages)
    trials = probe.of(TrialCompleted)
    assert len(trials) == 5  # the default program + 4 trials
    assert trials[0].candidate == dspy.Signature("text -> label").instructions


def test_mipro_minibatch_trials_do_not_raise_best(data: tuple[list, list], probe: Probe) -> None:
    train, val = data
    params = {
        "num_candidates": 3,
        "num_trials": 7,
        "minibatch_size": 4,
        "minibatch_full_eval_steps": 3,
        "max_labeled_demos": 2,
    }
    run_job(job("MIPROv2", params, train, val), probe.emit, CancelToken())
    started, trials = probe.of(Started)[0], probe.of(TrialCompleted)
    assert len(trials) == started.planned_trials == 11
    full = [t for t in trials if not t.candidate.endswith("(minibatch)")]
    assert 2 <= len(full) < len(trials)
    assert trials[-1].best_score == max(t.score for t in full)


def test_two_jobs_at_once_keep_their_own_progress(data: tuple[list, list]) -> None:
    """The dspy logger is process-wide; each job must only see its own lines."""
    train, val = data
    events: dict[str, list[JobEvent]] = {"MIPROv2": [], "COPRO": []}
    results: dict[str, JobResult | BaseException] = {}

    def run(optimizer: str, params: dict[str, Any]) -> None:
        try:
            results[optimizer] = run_job(
                job(optimizer, params, train, val), events[optimizer].append, CancelToken()
            )
        except BaseException as exc:
            results[optimizer] = exc

    threads = [
        threading.Thread(target=run, args=("MIPROv2", {"num_candidates": 3, "num_trials": 3})),
        threading.Thread(target=run, args=("COPRO", {"breadth": 3, "depth": 2})),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, JobResult) for r in results.values()), results
    mipro = [e.message for e in events["MIPROv2"] if isinstance(e, Progress)]
    copro = [e.message for e in events["COPRO"] if isinstance(e, Progress)]
    assert any(m.startswith("step 1/3") for m in mipro)
    assert not any(m.startswith("refinement round") for m in mipro)
    assert [m for m in copro if m.startswith("refinement round")] == [
        "refinement round 1/2",
        "refinement round 2/2",
    ]
    assert not any(m.startswith(("step ", "proposed", "demo set")) for m in copro)
    assert len([e for e in events["COPRO"] if isinstance(e, TrialCompleted)]) == 6


@pytest.mark.parametrize(
    ("optimizer", "params"),
    [
        ("MIPROv2", {"num_candidates": 3, "num_trials": 8, "max_labeled_demos": 2, "num_threads": 2}),
        ("BootstrapFewShotWithRandomSearch", {"num_candidate_programs": 6, "num_threads": 2}),
        ("BootstrapFewShotWithRandomSearch", {"num_candidate_programs": 6, "num_threads": 1}),
    ],
)
def test_cancel_stops_promptly_with_no_more_lm_calls(
    optimizer: str, params: dict[str, Any], data: tuple[list, list], probe: Probe
) -> None:
    train, val = data
    token = CancelToken()
    first_trial = threading.Event()

    def emit(event: JobEvent) -> None:
        probe.emit(event)
        if isinstance(event, TrialCompleted):
            first_trial.set()

    def canceller() -> None:
        first_trial.wait(30)
        token.cancel("stop requested in test")

    threading.Thread(target=canceller, daemon=True).start()
    # 5 ms per LM call so the cancel lands mid-evaluation, with calls in flight on worker threads.
    spec = job(optimizer, params, train, val, lm=LMConfig(latency_ms=5))
    with pytest.raises(JobCancelled) as caught:
        run_job(spec, emit, token)
    surfaced = time.monotonic()  # orders the engine calls around it; no bound on how long it took
    assert caught.value.reason == "stop requested in test"

    time.sleep(0.3)  # let any straggling worker thread run into the token
    with probe.lock:
        late = [t for t in probe.engine_calls if t > surfaced]
    # A worker that passed its on_lm_start check just before the cancel may still reach the
    # engine after the job surfaced (no DSPy hook sits later than on_lm_start): at most one
    # such call per worker thread, and none after it.
    assert len(late) <= params["num_threads"], late
    time.sleep(0.3)
    with probe.lock:
        assert [t for t in probe.engine_calls if t > surfaced] == late
    trials = probe.of(TrialCompleted)
    assert 1 <= len(trials) < probe.of(Started)[0].planned_trials


def test_cancel_before_start_makes_no_lm_call(data: tuple[list, list], probe: Probe) -> None:
    train, val = data
    token = CancelToken()
    token.cancel("never mind")
    with pytest.raises(JobCancelled, match="never mind"):
        run_job(job("MIPROv2", {}, train, val), probe.emit, token)
    assert probe.engine_calls == [] and probe.events == []


def test_bad_params_fail_before_any_lm_call(data: tuple[list, list], probe: Probe) -> None:
    train, val = data
    with pytest.raises(InvalidOptimizerParams, match=r"^params\.auto: "):
        run_job(job("MIPROv2", {"auto": "light", "num_trials": 3}, train, val), probe.emit, CancelToken())
    assert probe.engine_calls == [] and probe.events == []


def test_failures_propagate_as_ordinary_exceptions(data: tuple[list, list], probe: Probe) -> None:
    train, val = data

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("optimizer exploded")

    spec = job("LabeledFewShot", {"k": 2}, train, val)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dspy.LabeledFewShot, "compile", broken)
        with pytest.raises(RuntimeError, match="optimizer exploded"):
            run_job(spec, probe.emit, CancelToken())
    assert [type(r.event) for r in probe.events] == [Started, BaselineEvaluated]


def test_empty_valset_evaluates_on_the_trainset(data: tuple[list, list], probe: Probe) -> None:
    train, _ = data
    result = run_job(job("LabeledFewShot", {"k": 4}, train, []), probe.emit, CancelToken())
    baseline = probe.of(BaselineEvaluated)[0]
    assert baseline.examples == len(train)
    assert result.final_score > result.baseline_score


def test_prompt_lm_writes_the_instructions(data: tuple[list, list], monkeypatch: pytest.MonkeyPatch) -> None:
    import optimizer_svc.jobs.runner as runner_module

    built: list[dspy.LM] = []
    original = runner_module.lm_from_resolved

    def recording_lm_from_resolved(resolved: ResolvedLM, **kwargs: Any) -> dspy.LM:
        built.append(original(resolved, **kwargs))
        return built[-1]

    monkeypatch.setattr(runner_module, "lm_from_resolved", recording_lm_from_resolved)
    train, val = data
    spec = job("COPRO", {"breadth": 2, "depth": 1}, train, val)
    spec.prompt_lm = LMConfig()
    run_job(spec, lambda event: None, CancelToken())
    task_lm, prompt_lm = built
    proposals = [h for h in prompt_lm.history if "proposed_instruction" in str(h["messages"])]
    assert proposals and len(proposals) == len(prompt_lm.history)
    assert not any("proposed_instruction" in str(h["messages"]) for h in task_lm.history)


def test_only_the_compile_runs_with_dspy_callbacks_and_as_one(
    data: tuple[list, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each DSPy callback slows every call down (optimizer_svc.jobs.callbacks): the job's own
    evaluations run with none, the compile with the job's four as one, and every LM call is
    still counted."""
    train, val = data
    phase = ["before"]
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()
    original_complete = lm_module.OfflineEngine.complete
    original_compile = dspy.BootstrapFewShot.compile

    def complete(self: lm_module.OfflineEngine, request: Any) -> Any:
        with lock:
            seen.append((phase[0], len(dspy.settings.get("callbacks", None) or ())))
        return original_complete(self, request)

    def compile_in_phase(self: Any, *args: Any, **kwargs: Any) -> Any:
        phase[0] = "compile"
        try:
            return original_compile(self, *args, **kwargs)
        finally:
            phase[0] = "after"

    monkeypatch.setattr(lm_module.OfflineEngine, "complete", complete)
    monkeypatch.setattr(dspy.BootstrapFewShot, "compile", compile_in_phase)
    result = run_job(
        job("BootstrapFewShot", {"max_bootstrapped_demos": 2}, train, val), lambda e: None, CancelToken()
    )
    by_phase = {p: {n for q, n in seen if q == p} for p in ("before", "compile", "after")}
    assert by_phase == {"before": {0}, "compile": {1}, "after": {0}}, by_phase
    assert result.usage.lm_calls == len(seen)


def test_a_cancel_during_the_baseline_evaluation_stops_it(data: tuple[list, list], probe: Probe) -> None:
    """The baseline evaluation has no cancel callback: the job's LM checks before each call."""
    train, val = data
    token = CancelToken()
    original = lm_module.OfflineEngine.complete

    def cancel_at_the_fourth(self: lm_module.OfflineEngine, request: Any) -> Any:
        if len(probe.engine_calls) == 3:  # this is the fourth call: it completes
            token.cancel("stop during the baseline")
        return original(self, request)

    spec = job("BootstrapFewShot", {"num_threads": 1}, train, val)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lm_module.OfflineEngine, "complete", cancel_at_the_fourth)
        with pytest.raises(JobCancelled, match="stop during the baseline"):
            run_job(spec, probe.emit, token)
    assert len(probe.engine_calls) == 4 < len(val)  # no call after the one the cancel came in
    assert [type(r.event) for r in probe.events] == [Started]
