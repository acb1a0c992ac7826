"""Online evaluators through the real servers (an optimizer and two gateways on one SQLite
log, sharing its records file): a metric evaluator scores labelled predictions as outcomes of
its own source; a judge program version scores captured predictions, its LM calls counted
apart and held to its hourly budget; the sample is the same on both gateways and respects
the share; a full queue drops and counts while Predict answers; and an evaluator's scores
never mix with human outcomes in experiment results, a canary's check or a drift status."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest

from dspyops.cli.main import main
from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import gateway_pb2 as gpb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until
from tests.support.scrape import scrape, value

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:60], ROWS[60:]
LABELS = ("account", "billing", "refund", "shipping", "technical")
# the judge: every ticket's label is one of these, so the offline LM's rule answers score 0
JUDGE_RULE = f"If the label mentions {', '.join(LABELS[:-1])} or {LABELS[-1]}, the score is 0."


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Stack:
    opt: OptimizerClient
    a: GatewayClient
    b: GatewayClient
    records: str
    log: str
    clock: Clock
    servers: list[ServerThread] = field(default_factory=list)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("evaluators")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    opt = OptimizerClient(optimizer.address)
    for k in (16, 4):  # tickets 1.0.0 and 1.1.0
        events = list(
            opt.start_optimization(
                "tickets",
                "text -> label",
                trainset=TRAIN,
                valset=VAL,
                optimizer="LabeledFewShot",
                params={"k": k},
            )
        )
        assert events[-1].WhichOneof("kind") == "completed", events[-1]
    judged = [{**r, "score": "0"} for r in TRAIN[:4]]
    events = list(
        opt.start_optimization(
            "judge",
            "text, label -> score",
            instructions=JUDGE_RULE,
            trainset=judged,
            valset=judged,
            optimizer="LabeledFewShot",
            params={"k": 1},
        )
    )
    assert events[-1].WhichOneof("kind") == "completed", events[-1]
    clock = Clock()
    gateways = [
        ServerThread(
            lambda port=port: start_gateway(  # type: ignore[misc]
                GatewayConfig(log=log, canary_interval=0, drift_interval=0, clock=clock, metrics_port=port)
            )
        )
        for port in (None, 0)  # b serves /metrics: its judges' LM calls are counted
    ]
    a, b = (GatewayClient(s.address) for s in gateways)
    yield Stack(opt, a, b, f"{log}.predictions", log, clock, [optimizer, *gateways])
    a.close()
    b.close()
    opt.close()
    for server in reversed(gateways):
        server.stop()
    optimizer.stop()


def deploy(stack: Stack, name: str, *, capture: bool = False, routes: dict[str, float] | None = None) -> None:
    stack.opt.create_deployment(name, "tickets")
    stack.opt.set_routes(name, routes or {"1.0.0": 1.0})
    if capture:
        stack.opt.set_capture_policy(name, inputs_outputs=True)
    head = stack.opt.read_log(0, 1).head
    for gw in (stack.a, stack.b):
        assert wait_until(lambda g=gw: g.list_deployment_states().log_position >= head)  # type: ignore[misc]


def point(name: str, prediction_id: str) -> float:
    """The sample point, computed here on its own (sha256 of name, NUL, id; first 8 bytes)."""
    digest = hashlib.sha256(f"{name}\x00{prediction_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def scores(stack: Stack, source: str) -> dict[str, float]:
    """What the records file holds for `source`, read with sqlite3 itself."""
    with sqlite3.connect(stack.records) as conn:
        rows = conn.execute("SELECT prediction_id, value FROM outcomes WHERE source = ?", [source]).fetchall()
    return {p: float(v) for p, v in rows}


def lm_calls_of(gateway: ServerThread) -> float:
    assert gateway.running.metrics is not None
    return value(scrape(gateway.running.metrics.port), "dspyops_lm_calls_total", connection="offline")


def status_of(gw: GatewayClient, deployment: str, name: str) -> gpb.EvaluatorStatus:
    return next(e for e in gw.list_evaluators(deployment).evaluators if e.evaluator.name == name)


def test_a_metric_evaluator_scores_labelled_predictions_as_outcomes_of_its_own_source(stack: Stack) -> None:
    deploy(stack, "metric")
    status = stack.a.set_evaluator("metric", "exact", metric="exact_match", share=1.0, reason="watch labels")
    assert status.source == "evaluator:exact" and status.evaluator.metric == "exact_match"
    assert wait_until(
        lambda: [e.name for e in stack.b.get_deployment_state("metric").evaluators] == ["exact"]
    )
    events = stack.opt.read_log(0, 1000, "deployment-metric").events
    assert (
        events[-1].type == "dspyops.v1.EvaluatorSet"
        and events[-1].payload.evaluator_set.reason == "watch labels"
    )
    expected_scores = {}
    for i, row in enumerate(VAL[:12]):
        answer = stack.a.predict("metric", {"text": row["text"]}, routing_key=f"m{i}")
        label = row["label"] if i % 3 else "nonsense"  # every third label disagrees with any answer
        stack.a.record_outcome(answer.prediction_id, 1.0, expected={"label": label})
        expected_scores[answer.prediction_id] = float(answer.outputs["label"] == label)
    assert wait_until(lambda: status_of(stack.a, "metric", "exact").scored == 12, timeout=30)
    assert scores(stack, "evaluator:exact") == expected_scores
    s = status_of(stack.a, "metric", "exact")
    assert (s.sampled, s.dropped, s.failed, s.lm_calls, s.n) == (12, 0, 0, 0, 12)
    assert s.mean == pytest.approx(sum(expected_scores.values()) / 12)
    # an outcome without expected gives a metric nothing to compare: not sampled
    answer = stack.a.predict("metric", {"text": VAL[0]["text"]}, routing_key="m-unlabelled")
    stack.a.record_outcome(answer.prediction_id, 1.0)
    assert status_of(stack.a, "metric", "exact").sampled == 12
    # removed: no more scores; the recorded ones stay
    removed = stack.a.set_evaluator("metric", "exact", enabled=False)
    assert not removed.evaluator.enabled
    answer = stack.a.predict("metric", {"text": VAL[1]["text"]}, routing_key="m-after")
    stack.a.record_outcome(answer.prediction_id, 1.0, expected={"label": "billing"})
    assert stack.a.list_evaluators("metric").evaluators == []
    assert len(scores(stack, "evaluator:exact")) == 12


def test_record_outcome_cannot_claim_an_evaluator_source_and_keeps_one_human_outcome(stack: Stack) -> None:
    assert "source" not in gpb.RecordOutcomeRequest.DESCRIPTOR.fields_by_name
    deploy(stack, "human")
    stack.a.set_evaluator("human", "exact", metric="exact_match")
    answer = stack.a.predict("human", {"text": VAL[2]["text"]}, routing_key="h")
    stack.a.record_outcome(answer.prediction_id, 0.0, expected={"label": "nonsense"})
    assert wait_until(lambda: answer.prediction_id in scores(stack, "evaluator:exact"), timeout=30)
    with pytest.raises(grpc.RpcError) as err:  # the human's one outcome: the evaluator's is no human's
        stack.b.record_outcome(answer.prediction_id, 1.0)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert scores(stack, "")[answer.prediction_id] == 0.0


def test_a_judge_scores_captured_predictions_and_its_lm_calls_are_counted_apart(stack: Stack) -> None:
    deploy(stack, "nocapture")
    with pytest.raises(grpc.RpcError) as err:
        stack.a.set_evaluator("nocapture", "judge", judge_program="judge", judge_version="1.0.0")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "capture.inputs_outputs" in (err.value.details() or "")
    deploy(stack, "judged", capture=True)
    b_calls = lm_calls_of(stack.servers[2])
    stack.a.set_evaluator("judged", "judge", judge_program="judge", judge_version="1.0.0", share=1.0)
    assert wait_until(lambda: bool(stack.b.get_deployment_state("judged").evaluators))
    ids = [
        stack.a.predict("judged", {"text": r["text"]}, routing_key=f"j{i}").prediction_id
        for i, r in enumerate(VAL[:6])
    ]
    ids.append(stack.b.predict("judged", {"text": VAL[7]["text"]}, routing_key="jb").prediction_id)
    assert wait_until(lambda: len(scores(stack, "evaluator:judge")) == 7, timeout=60)
    assert scores(stack, "evaluator:judge") == dict.fromkeys(ids, 0.0)
    a, b = status_of(stack.a, "judged", "judge"), status_of(stack.b, "judged", "judge")
    assert (a.scored, b.scored) == (6, 1)  # each gateway judges what it served
    assert a.lm_calls >= 6 and b.lm_calls >= 1 and a.failed == 0
    # b's LM metric counts its prediction's call and its judge's (the same offline connection)
    assert lm_calls_of(stack.servers[2]) - b_calls == 1 + b.lm_calls
    assert a.n == 7 and a.mean == 0.0
    assert scores(stack, "") == {
        k: v for k, v in scores(stack, "").items() if k not in ids
    }  # no human outcome


def test_a_judges_budget_stops_its_calls_until_the_next_hour(stack: Stack) -> None:
    deploy(stack, "budget", capture=True)
    stack.a.set_evaluator(
        "budget", "judge", judge_program="judge", judge_version="1.0.0", share=1.0, max_calls_per_hour=2
    )
    assert wait_until(lambda: bool(stack.a.get_deployment_state("budget").evaluators))
    for i in range(5):
        stack.a.predict("budget", {"text": VAL[i]["text"]}, routing_key=f"b{i}")
    assert wait_until(
        lambda: (s := status_of(stack.a, "budget", "judge")).scored + s.over_budget == 5, timeout=60
    )
    s = status_of(stack.a, "budget", "judge")
    assert (s.scored, s.over_budget, s.lm_calls) == (2, 3, 2)
    stack.clock.now += 3600  # the next hour: the budget is back
    stack.a.predict("budget", {"text": VAL[6]["text"]}, routing_key="b-next")
    assert wait_until(lambda: status_of(stack.a, "budget", "judge").scored == 3, timeout=60)


def test_the_sample_is_the_hash_of_the_prediction_id_and_the_same_on_both_gateways(stack: Stack) -> None:
    deploy(stack, "sampled")
    share = 0.3
    stack.a.set_evaluator("sampled", "tenth", metric="exact_match", share=share)
    assert wait_until(lambda: bool(stack.b.get_deployment_state("sampled").evaluators))
    ids = []
    for i in range(120):
        served, told = (stack.a, stack.b) if i % 2 else (stack.b, stack.a)  # outcome on the other gateway
        answer = served.predict("sampled", {"text": VAL[i % len(VAL)]["text"]}, routing_key=f"s{i}")
        told.record_outcome(answer.prediction_id, 1.0, expected={"label": VAL[i % len(VAL)]["label"]})
        ids.append(answer.prediction_id)
    chosen = {p for p in ids if point("tenth", p) < share}
    assert 0.15 * len(ids) < len(chosen) < 0.45 * len(ids)  # the share, give or take chance
    total = lambda: sum(status_of(g, "sampled", "tenth").scored for g in (stack.a, stack.b))  # noqa: E731
    assert wait_until(lambda: total() == len(chosen), timeout=30)
    assert set(scores(stack, "evaluator:tenth")) == chosen
    assert sum(status_of(g, "sampled", "tenth").sampled for g in (stack.a, stack.b)) == len(chosen)


def test_a_full_queue_drops_and_counts_and_predict_is_unaffected(stack: Stack) -> None:
    deploy(stack, "dropping")
    server = ServerThread(
        lambda: start_gateway(
            GatewayConfig(
                log=stack.log, canary_interval=0, drift_interval=0, evaluator_queue=2, evaluator_workers=0
            )
        )
    )
    gw = GatewayClient(server.address)
    try:
        head = stack.opt.read_log(0, 1).head
        assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
        gw.set_evaluator("dropping", "exact", metric="exact_match")
        for i in range(5):
            answer = gw.predict("dropping", {"text": VAL[i]["text"]}, routing_key=f"d{i}")
            assert answer.outputs["label"] in LABELS
            gw.record_outcome(answer.prediction_id, 1.0, expected={"label": VAL[i]["label"]})
        listed = gw.list_evaluators("dropping")
        s = listed.evaluators[0]
        assert (s.sampled, s.dropped, s.scored, listed.queued) == (5, 3, 0, 2)
    finally:
        gw.close()
        server.stop()


def test_an_evaluators_scores_never_mix_with_human_outcomes(stack: Stack) -> None:
    """An evaluator scoring every prediction 0 while humans score 1: experiment results, the
    canary's check and the drift status all see 1; the evaluator's own view sees 0."""
    deploy(stack, "mixed")
    deploy(stack, "mixedc")
    for name in ("mixed", "mixedc"):
        # exact_match against a label no answer has: 0 for every prediction
        stack.a.set_evaluator(name, "zero", metric="exact_match")
    stack.a.start_experiment("mixed", "1.0.0", ["1.1.0"], min_samples_per_arm=1000)
    stack.a.set_drift_monitor("mixed", reference="window", reference_window=10, min_outcomes=10)
    stack.a.start_canary("mixedc", "1.1.0", steps=[50, 100], min_samples_per_step=1000)
    for gw in (stack.a, stack.b):
        assert wait_until(lambda g=gw: g.get_deployment_state("mixedc").HasField("canary"))  # type: ignore[misc]
        assert wait_until(lambda g=gw: g.get_deployment_state("mixed").HasField("drift"))  # type: ignore[misc]
    n = 0
    for name in ("mixed", "mixedc"):
        for i in range(40):
            answer = stack.a.predict(name, {"text": VAL[i % len(VAL)]["text"]}, routing_key=f"x{name}{i}")
            stack.a.record_outcome(answer.prediction_id, 1.0, expected={"label": "nonsense"})
            n += 1
    total = lambda: sum(status_of(stack.a, d, "zero").scored for d in ("mixed", "mixedc"))  # noqa: E731
    assert wait_until(lambda: total() == n, timeout=60)
    # the experiment: every arm's outcomes are the humans' 1s; with source, the evaluator's 0s
    human = stack.a.get_experiment_results("mixed")
    assert sum(arm.n for arm in human.arms) == 40
    assert all(arm.mean == 1.0 for arm in human.arms if arm.n)
    zero = stack.b.get_experiment_results("mixed", source="evaluator:zero")
    assert sum(arm.n for arm in zero.arms) == 40
    assert all(arm.mean == 0.0 for arm in zero.arms if arm.n)
    # the drift monitor's outcome rate
    drift = stack.b.get_drift_status("mixed")
    rate = next(s for s in drift.signals if s.signal == "outcome_rate")
    assert rate.value == 1.0 and rate.n > 0 and not rate.drifted
    # the canary's check of its step
    check = stack.a.evaluate_canary("mixedc").check
    assert check.baseline_n + check.candidate_n == 40
    assert (check.baseline_mean if check.baseline_n else 1.0) == 1.0
    assert (check.candidate_mean if check.candidate_n else 1.0) == 1.0
    # the evaluator's own view
    for d in ("mixed", "mixedc"):
        s = status_of(stack.b, d, "zero")
        assert s.n == 40 and s.mean == 0.0


def test_a_judge_must_answer_a_score(stack: Stack) -> None:
    stack.opt.create_deployment(
        "judges", "judge"
    )  # the judge served, "tickets" (answering label) as its judge
    stack.opt.set_routes("judges", {"1.0.0": 1.0})
    stack.opt.set_capture_policy("judges", inputs_outputs=True)
    head = stack.opt.read_log(0, 1).head
    assert wait_until(lambda: stack.a.list_deployment_states().log_position >= head)
    with pytest.raises(grpc.RpcError) as err:
        stack.a.set_evaluator("judges", "j", judge_program="tickets", judge_version="1.0.0")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "evaluator.judge_version" in str(err.value.details()) and "'score'" in str(err.value.details())
    assert stack.opt.read_log(0, 1).head == head


def test_evaluators_cli_set_list_remove(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    deploy(stack, "cli", capture=True)
    addresses = ["--optimizer", stack.servers[0].address, "--gateway", stack.servers[1].address]

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main([*addresses, *args])
        return code, capsys.readouterr().out

    code, out = run(
        "evaluators",
        "set",
        "cli",
        "judge",
        "--judge",
        "judge@1.0.0",
        "--share",
        "1",
        "--max-calls-per-hour",
        "50",
    )
    assert code == 0, out
    assert "judge: judge judge@1.0.0 on 100% of predictions, budget 50 LM calls/h" in out
    assert "evaluator:judge" in out
    code, out = run("evaluators", "set", "cli", "exact", "--metric", "exact_match", "--share", "0.1")
    assert code == 0 and "exact: metric exact_match on 10% of predictions" in out
    stack.a.predict("cli", {"text": VAL[0]["text"]}, routing_key="cli")
    assert wait_until(lambda: status_of(stack.a, "cli", "judge").scored == 1, timeout=30)
    code, out = run("evaluators", "list", "cli")
    assert (
        code == 0
        and "evaluators of cli" in out
        and "metric exact_match" in out
        and "judge judge@1.0.0" in out
    )
    with pytest.raises(SystemExit) as exit_:  # a usage error: PROGRAM@VERSION
        run("evaluators", "set", "cli", "bad", "--judge", "judge")
    assert exit_.value.code == 2
    code, out = run("evaluators", "remove", "cli", "exact", "--reason", "enough")
    assert code == 0 and "exact: removed" in out
    last = stack.opt.read_log(0, 1000, "deployment-cli").events[-1]
    assert (
        last.payload.evaluator_set.evaluator.enabled is False
        and last.payload.evaluator_set.reason == "enough"
    )
    code, out = run("log", "read", "--stream", "deployment-cli")
    assert "evaluator of cli: exact: removed (enough)" in out
    assert [e.evaluator.name for e in stack.a.list_evaluators("cli").evaluators] == ["judge"]
    code, out = run("deployments", "state", "cli")
    assert code == 0 and "evaluator judge: judge judge@1.0.0 on 100% of predictions" in out


def test_explain_says_why_each_evaluator_did_or_did_not_score_a_prediction(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(stack, "explained")
    stack.a.set_evaluator("explained", "half", metric="exact_match", share=0.5)
    head = stack.opt.read_log(0, 1).head
    assert wait_until(lambda: stack.a.list_deployment_states().log_position >= head)
    answers = [stack.a.predict("explained", {"text": VAL[i]["text"]}, routing_key=f"e{i}") for i in range(8)]
    # attached after they were served, before their outcomes: it scores them all the same
    stack.a.set_evaluator("explained", "late", metric="exact_match", share=1.0)
    head = stack.opt.read_log(0, 1).head
    assert wait_until(lambda: stack.a.list_deployment_states().log_position >= head)
    for answer in answers:
        stack.a.record_outcome(answer.prediction_id, 1.0, expected={"label": answer.outputs["label"]})
    chosen = [a.prediction_id for a in answers if point("half", a.prediction_id) < 0.5]
    want = len(chosen) + len(answers)
    assert wait_until(lambda: sum(e.scored for e in stack.a.list_evaluators("explained").evaluators) == want)
    for answer in answers:
        found = {s.name: s for s in stack.b.explain_prediction(answer.prediction_id).evaluators}
        half, late = found["half"], found["late"]
        assert half.point == pytest.approx(point("half", answer.prediction_id)) and half.share == 0.5
        assert half.sampled == half.scored == (answer.prediction_id in chosen)
        assert half.score == (1.0 if half.scored else 0.0)  # its own answer as the label: exact
        assert late.share == 0.0 and not late.sampled and late.scored and late.score == 1.0
        assert late.source == "evaluator:late"
    capsys.readouterr()
    main(["--gateway", stack.servers[1].address, "explain", answers[0].prediction_id])
    out = capsys.readouterr().out
    assert "evaluator late: not sampled" in out and "not attached when served), scored 1" in out
    assert "evaluator half: " in out and "share 50%" in out


def test_a_judge_answering_no_number_is_counted_failed_and_records_nothing(stack: Stack) -> None:
    judged = [{**r, "score": "high"} for r in TRAIN[:4]]
    rule = f"If the label mentions {', '.join(LABELS[:-1])} or {LABELS[-1]}, the score is high."
    events = list(
        stack.opt.start_optimization(
            "wordy",
            "text, label -> score",
            instructions=rule,
            trainset=judged,
            valset=judged,
            optimizer="LabeledFewShot",
            params={"k": 1},
        )
    )
    assert events[-1].WhichOneof("kind") == "completed", events[-1]
    deploy(stack, "wordy-judged", capture=True)
    stack.a.set_evaluator("wordy-judged", "wordy", judge_program="wordy", judge_version="1.0.0")
    assert wait_until(lambda: bool(stack.a.get_deployment_state("wordy-judged").evaluators))
    answer = stack.a.predict("wordy-judged", {"text": VAL[0]["text"]}, routing_key="w")
    assert answer.outputs["label"] in LABELS  # the prediction is served whatever its judge answers
    assert wait_until(lambda: status_of(stack.a, "wordy-judged", "wordy").failed == 1, timeout=30)
    s = status_of(stack.a, "wordy-judged", "wordy")
    assert (s.scored, s.n) == (0, 0) and s.lm_calls >= 1  # its LM calls still counted
    assert scores(stack, "evaluator:wordy") == {}
