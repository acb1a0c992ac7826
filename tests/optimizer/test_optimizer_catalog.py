"""The new optimizers, ListOptimizers and presets, through a real optimizer_svc server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from dspyops.client import OptimizerClient
from optimizer_svc.optimizers.registry import OPTIMIZERS, PRESETS
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:16], ROWS[40:52]

# Tiny real runs on the offline engine; `improves`: the demo-driven engine lets it beat zero-shot.
NEW: dict[str, tuple[dict[str, Any], bool]] = {
    "GEPA": ({"max_metric_calls": 60}, False),  # instructions only: the engine answers from demos
    "SIMBA": ({"bsize": 4, "num_candidates": 2, "max_steps": 2}, False),
    "KNNFewShot": ({"k": 3}, True),
    "InferRules": ({"num_candidates": 2, "num_rules": 3}, True),
    "BootstrapFewShotWithOptuna": ({"num_candidate_programs": 3}, True),
    "Ensemble": ({"size": 3}, True),
    "BetterTogether": ({"strategy": "bootstrap -> p", "num_candidate_programs": 2}, True),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("catalog")
    thread = ServerThread(lambda: start(OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data")))
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def opt(server: ServerThread) -> Iterator[OptimizerClient]:
    with OptimizerClient(server.address) as client:
        yield client


def kinds(events: list) -> list[str]:
    return [e.WhichOneof("kind") for e in events]


def job(optimizer: str = "", params: dict | None = None, **kw: Any) -> dict[str, Any]:
    """The client's arguments of a job on TRAIN and VAL."""
    return {
        "program": kw.pop("program", "tickets"),
        "signature": "text -> label",
        "optimizer": optimizer,
        "params": params,
        "trainset": TRAIN,
        "valset": VAL,
        "input_keys": ["text"],
        **kw,
    }


@pytest.mark.parametrize("optimizer", list(NEW))
def test_new_optimizer_streams_live_progress_and_completes(opt: OptimizerClient, optimizer: str) -> None:
    params, improves = NEW[optimizer]
    events = list(opt.start_optimization(**job(optimizer, params, program=optimizer.lower())))
    names = kinds(events)
    assert names[:4] == ["accepted", "claimed", "started", "baseline"], names
    assert names[-1] == "completed", events[-1]
    done = names.index("completed")
    assert "trial" in names[:done] and "progress" in names[:done]
    trials = [e.trial for e in events if e.WhichOneof("kind") == "trial"]
    assert [t.trial for t in trials] == list(range(1, len(trials) + 1))
    assert all(0.0 <= t.score <= 1.0 and t.candidate for t in trials)
    planned = events[1].started.planned_trials
    if planned:
        assert len(trials) == planned, (planned, [t.candidate for t in trials])
    completed = events[-1].completed
    assert 0.0 <= completed.final_score <= 1.0
    if improves:
        assert completed.final_score > completed.baseline_score
    assert completed.usage.lm_calls > 0


def test_gepa_reports_iterations_and_valset_trials(opt: OptimizerClient) -> None:
    events = list(opt.start_optimization(**job("GEPA", {"max_metric_calls": 40}, program="gepa2")))
    progress = [e.progress.message for e in events if e.WhichOneof("kind") == "progress"]
    assert any(m.startswith("iteration 1: improving candidate 0") for m in progress)
    assert any(": proposed instruction: " in m for m in progress)
    trials = [e.trial for e in events if e.WhichOneof("kind") == "trial"]
    assert trials[0].candidate.startswith("seed: Given the fields")  # the valset score of the seed


def test_cancel_stops_gepa(opt: OptimizerClient) -> None:
    stream = opt.start_optimization(**job("GEPA", {"max_metric_calls": 100000}, program="gepa3"))
    seen = []
    for event in stream:
        seen.append(event)
        if event.WhichOneof("kind") == "progress" and len(seen) < 100:
            if sum(1 for e in seen if e.WhichOneof("kind") == "progress") == 3:
                opt.cancel_job(event.job_id, "enough reflection")
    assert kinds(seen)[-1] == "cancelled" and "enough reflection" in seen[-1].cancelled.reason


def test_list_optimizers(opt: OptimizerClient) -> None:
    answer = opt.list_optimizers()
    by_name = {o.name: o for o in answer.optimizers}
    assert list(by_name) == list(OPTIMIZERS)
    for info in answer.optimizers:
        assert info.doc and info.params and all(p.doc and p.type and p.allowed for p in info.params)
    gepa = by_name["GEPA"]
    params = {p.name: p for p in gepa.params}
    assert params["auto"].choices == ["light", "medium", "heavy"] and params["auto"].nullable
    assert params["auto"].default.string_value == "light"
    assert params["max_metric_calls"].default.WhichOneof("kind") == "null_value"
    assert params["max_metric_calls"].minimum == 1 and params["max_metric_calls"].HasField("maximum")
    assert params["use_merge"].type == "bool" and params["use_merge"].default.bool_value is True
    assert gepa.needs_valset and gepa.uses_prompt_lm and "reflects" in gepa.prompt_lm_role
    assert gepa.rules == "exactly one of auto and max_metric_calls"
    assert not by_name["LabeledFewShot"].uses_prompt_lm and not by_name["LabeledFewShot"].needs_valset
    k = {p.name: p for p in by_name["KNNFewShot"].params}["k"]
    assert (k.type, k.default.number_value, k.minimum, k.maximum) == ("int", 3.0, 1.0, 64.0)
    assert k.allowed == "an integer in [1, 64]"
    presets = {p.name: p for p in answer.presets}
    assert {"quick-bootstrap", "balanced-mipro", "thorough-mipro", "gepa-light"} <= set(presets)
    assert presets["gepa-light"].optimizer == "GEPA" and presets["gepa-light"].doc
    assert MessageToDict(presets["thorough-mipro"].params)["auto"] == "medium"


def test_preset_runs_with_overrides(opt: OptimizerClient) -> None:
    events = list(opt.start_optimization(**job(preset="quick-bootstrap", params={"max_labeled_demos": 2})))
    assert kinds(events)[-1] == "completed"
    accepted = events[0].accepted
    assert accepted.optimizer == "BootstrapFewShot"
    params = MessageToDict(accepted.params)
    assert params["max_labeled_demos"] == 2 and params["max_bootstrapped_demos"] == 4  # override, preset
    # Naming the preset's optimizer too is fine; manual MIPROv2 trials replace the preset's auto.
    events = list(
        opt.start_optimization(
            **job(
                "MIPROv2",
                {"num_candidates": 2, "num_trials": 2, "max_labeled_demos": 2},
                preset="balanced-mipro",
                program="mipro-preset",
            )
        )
    )
    assert kinds(events)[-1] == "completed"
    params = MessageToDict(events[0].accepted.params)
    assert params.get("auto") is None and params["num_trials"] == 2


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"preset": "turbo"}, "preset", 'unknown "turbo"; known: quick-bootstrap'),
    ({"preset": "gepa-light", "optimizer": "MIPROv2"}, "optimizer", 'preset "gepa-light" runs GEPA'),
    ({"preset": "gepa-light", "params": {"bogus": 1}}, "params.bogus", "unknown parameter for GEPA"),
    ({"preset": "gepa-light", "params": {"max_metric_calls": 5, "auto": "light"}}, "params.auto", "not both"),
    ({"optimizer": "MIPROv2", "params": {"auto": "light", "num_trials": 3}}, "params.auto", "not both"),
    ({"optimizer": "GEPA", "params": {"auto": None}}, "params.max_metric_calls", "is required"),
    (
        {"optimizer": "BetterTogether", "params": {"strategy": "p -> w"}},
        "params.strategy",
        "weight optimizer",
    ),
    ({"optimizer": "SIMBA", "params": {"max_steps": 0}}, "params.max_steps", "in [1, 100], got 0"),
    ({"optimizer": "Nope"}, "optimizer", 'unknown "Nope"'),
    ({}, "optimizer", "is required (or name a preset)"),
]


@pytest.mark.parametrize(("fields", "field", "problem"), BAD)
def test_bad_optimizer_requests_are_invalid_argument_and_append_nothing(
    opt: OptimizerClient, fields: dict[str, Any], field: str, problem: str
) -> None:
    head = opt.read_log(0, 1).head
    fields = dict(fields)
    arguments = job(fields.pop("optimizer", ""), fields.pop("params", None), **fields)
    with pytest.raises(grpc.RpcError) as err:
        list(opt.start_optimization(**arguments))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(f"{field}: ") and problem in err.value.details(), (
        err.value.details()
    )
    assert opt.read_log(0, 1).head == head


def test_presets_are_documented_and_valid() -> None:
    assert all(p.doc and p.optimizer in OPTIMIZERS for p in PRESETS.values())


def test_concurrent_new_optimizers_keep_their_own_progress(opt: OptimizerClient) -> None:
    """SIMBA's and BetterTogether's progress comes from the process-wide dspy logger."""
    results: dict[str, list] = {}

    def run(optimizer: str, params: dict[str, Any]) -> None:
        with OptimizerClient(opt.address) as own:
            results[optimizer] = list(own.start_optimization(**job(optimizer, params, program="c")))

    threads = [
        threading.Thread(target=run, args=("SIMBA", NEW["SIMBA"][0])),
        threading.Thread(target=run, args=("BetterTogether", NEW["BetterTogether"][0])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    simba = [e.progress.message for e in results["SIMBA"] if e.WhichOneof("kind") == "progress"]
    bt = [e.progress.message for e in results["BetterTogether"] if e.WhichOneof("kind") == "progress"]
    assert any(m.startswith("SIMBA step") for m in simba) and not any(m.startswith("strategy") for m in simba)
    assert [m for m in bt if m.startswith("strategy step")] == [
        "strategy step 1/2: BootstrapFewShot",
        "strategy step 2/2: BootstrapFewShotWithRandomSearch",
    ]
    assert not any(m.startswith("SIMBA") for m in bt)
