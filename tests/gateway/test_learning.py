"""The learning loop through the real servers: an optimizer and two gateways on one SQLite
log (sharing its records file), each running the drift, canary and learning loops with the
optimizer as their learning optimizer, on one clock the tests move instead of waiting.

The serving version tickets 1.0.0 was registered by a real job (LabeledFewShot, one demo: the
offline LM copies that demo's label for every ticket, so it is mostly wrong). Labelled
outcomes with `expected` (captured inputs) are the feedback; a retrain (LabeledFewShot, 16
demos, on 1.0.0's trainset plus the feedback) answers better on the held-out feedback, so it
beats 1.0.0 there and passes its gate. A test that needs the gate to fail labels only tickets
whose correct label is the one 1.0.0 answers (`Stack.agreeing`): 1.0.0 scores 1.0 on any
holdout of them, so no retrain beats it by 0.99. (On mixed tickets the hashed holdout is a
few random ones, and 1.0.0 scoring 0.0 there while the retrain scores 1.0 let a 0.99 gate
pass in about one run of three.)"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dspyops.cli.main import main
from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()
BASE_TRAIN = ROWS[:4]
VAL = ROWS[60:]
DEPLOYMENTS = ("drifty", "strict", "quiet", "paused", "counted", "cli", "refused", "probe")
LEARNING: dict[str, Any] = {"optimizer": "LabeledFewShot", "params": {"k": 16}}


class Clock:
    """The gateways' wall clock, moved forward by the tests instead of waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Stack:
    opt: OptimizerClient
    gateways: list[GatewayClient]
    clock: Clock
    score: float  # 1.0.0's offline score on VAL
    addresses: list[str]  # the optimizer's, then the gateways'
    answers: str  # the label 1.0.0 answers for every ticket (its one demo's)

    def agreeing(self, n: int) -> list[dict[str, str]]:
        """`n` tickets (repeating) whose correct label is the one 1.0.0 answers."""
        rows = [r for r in ROWS if r["label"] == self.answers]
        return list(itertools.islice(itertools.cycle(rows), n))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("learning")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    opt = OptimizerClient(optimizer.address)
    events = list(
        opt.start_optimization(
            "tickets", "text -> label", trainset=BASE_TRAIN, optimizer="LabeledFewShot", params={"k": 1}
        )
    )
    assert events[-1].WhichOneof("kind") == "completed", events[-1]
    score = list(opt.evaluate("tickets", "1.0.0", dataset=VAL))[-1].report.score
    for name in DEPLOYMENTS:
        opt.create_deployment(name, "tickets")
        opt.set_routes(name, {"1.0.0": 1.0})
        opt.set_capture_policy(name, inputs_outputs=True)
    clock = Clock()
    config = GatewayConfig(
        log=log,
        canary_interval=0.1,
        drift_interval=0.1,
        learning_interval=0.1,
        learning_optimizer=optimizer.address,
        clock=clock,
    )
    gateways = [ServerThread(lambda: start_gateway(config)) for _ in range(2)]
    clients = [GatewayClient(s.address) for s in gateways]
    head = opt.read_log(0, 1).head
    for client in clients:
        assert wait_until(lambda c=client: c.list_deployment_states().log_position >= head)  # type: ignore[misc]
    answers = {
        clients[0].predict("probe", {"text": r["text"]}, routing_key="probe").outputs["label"] for r in VAL
    }
    assert len(answers) == 1, answers  # a demo's label for every ticket, whatever the ticket
    addresses = [optimizer.address, *(g.address for g in gateways)]
    yield Stack(opt, clients, clock, score, addresses, answers.pop())
    for client in clients:
        client.close()
    opt.close()
    for server in reversed(gateways):
        server.stop()
    optimizer.stop()


def labelled(gw: GatewayClient, deployment: str, rows: list[dict[str, str]], start: int) -> list[str]:
    """A prediction per row, each with a failed outcome and its correct label (feedback)."""
    served = []
    for i, row in enumerate(rows):
        answer = gw.predict(deployment, {"text": row["text"]}, routing_key=f"{deployment}-{start + i}")
        gw.record_outcome(answer.prediction_id, 0.0, expected={"label": row["label"]})
        served.append(answer.version)
    return served


def stream(opt: OptimizerClient, name: str) -> list[pb.Event]:
    return list(opt.read_log(0, 1000, f"deployment-{name}").events)


def of_type(events: list[pb.Event], kind: str) -> list[pb.Event]:
    return [e for e in events if e.type == f"dspyops.v1.{kind}"]


def test_drift_retrains_gates_canaries_and_promotes_and_explain_walks_back(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = stack.gateways
    assert stack.score < 0.6, f"1.0.0 scores {stack.score}: no room for a retrain to beat it"
    a.set_drift_monitor("drifty", min_outcomes=40)
    status = a.set_learning_policy(
        "drifty", **LEARNING, on_drift=True, canary_steps=[50, 100], step_seconds=60, reason="keep it fresh"
    )
    assert status.enabled and status.policy.holdout_fraction == pytest.approx(0.3)  # the default, filled in
    assert list(status.policy.canary.steps) == [50, 100] and status.policy.canary.min_samples_per_step == 100
    assert "no drift detection of 1.0.0" in status.idle, status.idle
    labelled(
        b, "drifty", (ROWS[4:] * 2)[:150], 0
    )  # every outcome fails: the rate drops below the offline score
    found = wait_until(lambda: bool(of_type(stream(stack.opt, "drifty"), "LearningRunEnded")), timeout=90)
    st = b.get_learning_status("drifty")
    assert found, (st.idle, st.loop, st.drift.check)
    events = stream(stack.opt, "drifty")
    [detected] = of_type(events, "DriftDetected")
    [triggered] = of_type(events, "LearningTriggered")  # although both gateways run the loop
    t = triggered.payload.learning_triggered
    assert (t.trigger, t.drift_position, t.serving_version) == ("drift", detected.position, "1.0.0")
    assert triggered.actor == "system" or triggered.actor == ""
    f = t.feedback
    assert f.train_n >= 20 and f.holdout_n >= 10 and f.train_n + f.holdout_n >= 40
    n = f.train_n + f.holdout_n  # a hashed 30% held out (its exact draw: test_learning_window)
    assert f.holdout_fraction == pytest.approx(0.3)
    assert abs(f.holdout_n - 0.3 * n) <= 4 * (0.21 * n) ** 0.5
    assert len(f.train_digest) == len(f.holdout_digest) == 64 and f.last_token
    base_job = stack.opt.read_log(0, 1, "job-").events[0].payload.job_accepted.job_id
    assert t.base_job_id == base_job and t.request_id == f"learn-{t.run_id}"
    # the job: 1.0.0's trainset + the feedback's training part, the held-out part as its valset
    [ended] = of_type(events, "LearningRunEnded")
    e = ended.payload.learning_run_ended
    assert e.result == "canary_started", e
    job = next(
        ev.payload.job_accepted
        for ev in stack.opt.read_log(0, 1000, f"job-{e.job_id}").events
        if ev.type == "dspyops.v1.JobAccepted"
    )
    assert (job.learning.deployment, job.learning.run_id) == ("drifty", t.run_id)
    assert job.trainset_size == len(BASE_TRAIN) + f.train_n and job.valset_size == f.holdout_n
    assert job.inputs.must_beat_version == "1.0.0" and not job.auto_promote
    assert e.final_score > e.must_beat_score, e
    # the canary started in the same batch as the run's end, by its schedule
    [started] = of_type(events, "CanaryStarted")
    assert started.position == ended.position - 1
    canary = started.payload.canary_started.canary
    assert (canary.candidate, canary.baseline, list(canary.steps)) == (
        e.candidate_version,
        "1.0.0",
        [50, 100],
    )
    assert e.canary_id == canary.canary_id and canary.step_seconds == 60
    status = b.get_learning_status("drifty")
    assert status.last.ended.result == "canary_started" and status.canary.canary_id == canary.canary_id
    assert "runs on the deployment" in status.idle and status.last_detection_position == detected.position
    # the monitoring period passes: the canary promotes the candidate
    stack.clock.offset += 61
    assert wait_until(lambda: bool(of_type(stream(stack.opt, "drifty"), "CanaryEnded")), timeout=30)
    [end] = of_type(stream(stack.opt, "drifty"), "CanaryEnded")
    assert end.payload.canary_ended.promoted
    assert wait_until(lambda: a.get_deployment_state("drifty").canary.canary_id == "")
    answer = a.predict("drifty", {"text": ROWS[70]["text"]}, routing_key="after")
    assert answer.version == e.candidate_version
    # explain walks back: version -> job -> run -> drift detection and feedback window
    lineage = a.explain_prediction(answer.prediction_id).learning
    assert (lineage.run_id, lineage.job_id, lineage.trigger) == (t.run_id, e.job_id, "drift")
    assert lineage.drift_position == detected.position and lineage.detection.signal == "outcome_rate"
    assert lineage.detection.statistics.drifted and lineage.detection.statistics.p_value <= 0.05
    assert lineage.feedback == f and lineage.base_job_id == base_job and lineage.serving_version == "1.0.0"
    capsys.readouterr()
    assert main(["--gateway", stack.addresses[1], "predictions", "explain", answer.prediction_id]) == 0
    out = capsys.readouterr().out
    assert f"retrained by {t.run_id} (job {e.job_id}) from 1.0.0, trigger drift" in out, out
    assert f"drift detection at position {detected.position}: drift of 1.0.0 on outcome_rate" in out
    assert f"{f.train_n} train / {f.holdout_n} held out" in out and f"base trainset: job {base_job}" in out
    # the retrained version serves now: a new detection of it would be needed for the next run
    assert wait_until(
        lambda: "no drift detection of " + e.candidate_version in a.get_learning_status("drifty").idle
    )


def test_a_candidate_that_fails_its_gate_never_reaches_traffic(stack: Stack) -> None:
    a, _ = stack.gateways
    a.set_learning_policy("strict", **LEARNING, min_new_examples=30, min_improvement=0.99)
    labelled(a, "strict", stack.agreeing(36), 100)
    assert wait_until(lambda: bool(of_type(stream(stack.opt, "strict"), "LearningRunEnded")), timeout=90)
    events = stream(stack.opt, "strict")
    [triggered] = of_type(events, "LearningTriggered")
    assert triggered.payload.learning_triggered.trigger == "new_examples"
    [ended] = of_type(events, "LearningRunEnded")
    e = ended.payload.learning_run_ended
    assert e.result == "gate_failed" and e.candidate_version and "gets no traffic" in e.reason, e
    assert (
        of_type(events, "CanaryStarted") == []
        and of_type(events, "RoutesSet")[-1].position < triggered.position
    )
    state = a.get_deployment_state("strict")
    assert [(r.version, r.weight) for r in state.routes] == [("1.0.0", 1.0)] and not state.canary.canary_id
    served = labelled(a, "strict", ROWS[40:50], 200)
    assert set(served) == {"1.0.0"}
    assert a.get_learning_status("strict").last.ended.result == "gate_failed"


def test_no_drift_and_too_few_examples_over_a_long_stream_trigger_nothing(stack: Stack) -> None:
    a, b = stack.gateways
    a.set_learning_policy("quiet", **LEARNING, min_new_examples=500, on_drift=False)
    for start in range(0, 300, 60):  # a long stream, the clock moving a day at a time
        labelled(a if start % 120 else b, "quiet", ROWS[:60], 1000 + start)
        stack.clock.offset += 86_400
    assert wait_until(
        lambda: "300 new labelled examples of 500" in a.get_learning_status("quiet").idle, timeout=30
    )
    assert wait_until(lambda: "300 new labelled examples" in b.get_learning_status("quiet").loop, timeout=30)
    assert of_type(stream(stack.opt, "quiet"), "LearningTriggered") == []
    assert b.get_learning_status("quiet").new_examples == 300


def test_pause_holds_a_trigger_until_resumed_and_one_run_at_a_time(stack: Stack) -> None:
    a, b = stack.gateways
    a.set_learning_policy("paused", **LEARNING, min_new_examples=10, min_improvement=0.99)
    status = a.pause_learning("paused", reason="freeze")
    assert status.paused and status.idle.startswith("paused")
    labelled(a, "paused", stack.agreeing(20), 2000)
    assert wait_until(lambda: "paused" in b.get_learning_status("paused").loop, timeout=30)
    assert of_type(stream(stack.opt, "paused"), "LearningTriggered") == []
    b.pause_learning("paused", paused=False)
    assert wait_until(lambda: bool(of_type(stream(stack.opt, "paused"), "LearningTriggered")), timeout=30)
    # more examples arrive while the run is active (and after): one run at a time, so on the
    # deployment's stream every LearningTriggered is followed by its run's end before the next
    labelled(b, "paused", stack.agreeing(20), 2100)
    assert wait_until(lambda: len(of_type(stream(stack.opt, "paused"), "LearningRunEnded")) >= 1, timeout=90)
    # settled: no run active, and fewer than 10 examples since the last one's window
    settled = wait_until(lambda: a.get_learning_status("paused").idle.startswith("waiting: "), timeout=90)
    st = a.get_learning_status("paused")
    assert settled, (st.idle, st.loop, st.active, [e.type for e in stream(stack.opt, "paused")])
    kinds = [e.type.rsplit(".", 1)[-1] for e in stream(stack.opt, "paused")]
    runs = [k for k in kinds if k in ("LearningTriggered", "LearningRunEnded")]
    assert runs == ["LearningTriggered", "LearningRunEnded"] * (len(runs) // 2) and runs, runs


def test_min_interval_holds_the_next_run_on_the_gateway_clock(stack: Stack) -> None:
    a, _ = stack.gateways
    a.set_learning_policy(
        "counted", **LEARNING, min_new_examples=10, min_improvement=0.99, min_interval_seconds=3600
    )
    labelled(a, "counted", stack.agreeing(12), 3000)
    assert wait_until(lambda: bool(of_type(stream(stack.opt, "counted"), "LearningRunEnded")), timeout=90)
    [ended] = of_type(stream(stack.opt, "counted"), "LearningRunEnded")
    assert ended.payload.learning_run_ended.result == "gate_failed", ended  # no canary holds it
    labelled(a, "counted", stack.agreeing(14), 3100)  # enough for a second run, but within the hour
    assert wait_until(lambda: "next one in" in a.get_learning_status("counted").idle, timeout=30)
    assert len(of_type(stream(stack.opt, "counted"), "LearningTriggered")) == 1
    stack.clock.offset += 3601
    assert wait_until(
        lambda: len(of_type(stream(stack.opt, "counted"), "LearningTriggered")) == 2, timeout=30
    )
    second = of_type(stream(stack.opt, "counted"), "LearningTriggered")[1].payload.learning_triggered
    assert second.feedback.train_n + second.feedback.holdout_n == 26  # every label so far


def test_learn_cli_enable_status_pause_resume_disable(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    addresses = ["--optimizer", stack.addresses[0], "--gateway", stack.addresses[1]]

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main([*addresses, *args])
        return code, " ".join(capsys.readouterr().out.split())  # the console wraps long lines

    code, out = run("learn", "status", "cli")
    assert code == 0 and "cli: no learning policy" in out
    code, out = run(
        "learn", "enable", "cli", "--optimizer", "LabeledFewShot", "--param", "k=16",
        "--min-new-examples", "10", "--no-drift", "--min-improvement", "0.99",
        "--canary-steps", "10,50,100", "--step-minutes", "5",
        "--max-latency-p95", "900", "--min-interval-minutes", "1", "--max-lm-calls", "500",
    )  # fmt: skip
    assert code == 0, out
    assert "learning on: LabeledFewShot, every 10 new labels; holdout 0.3; gate: beat the serving" in out
    assert "version by 0.99" in out
    assert "canary 10,50,100%, 300s per step; max latency p95 ms 900; at least 60s between retrains" in out
    assert "budget 500 LM calls" in out and "waiting: 0 new labelled examples of 10" in out
    code, out = run("learn", "pause", "cli", "--reason", "freeze")
    assert code == 0 and "learning paused" in out
    code, out = run("learn", "resume", "cli")
    assert code == 0 and "learning on" in out
    labelled(stack.gateways[1], "cli", stack.agreeing(12), 4000)
    assert wait_until(lambda: bool(of_type(stream(stack.opt, "cli"), "LearningRunEnded")), timeout=90)
    [ended] = of_type(stream(stack.opt, "cli"), "LearningRunEnded")
    job = stack.opt.read_log(0, 1, f"job-{ended.payload.learning_run_ended.job_id}").events[0]
    assert job.payload.job_accepted.inputs.budget.max_lm_calls == 500  # the policy's budget per retrain
    code, out = run("learn", "status", "cli")
    assert (
        code == 0
        and "last run: retrain run-" in out
        and "ended: retrain run-" in out
        and "gate_failed" in out
    )
    assert "gate: failed: " in out, out
    code, out = run("log", "read", "--stream", "deployment-cli")
    assert (
        "learning on cli: LabeledFewShot" in out and "(new labelled examples)" in out and "gate_failed" in out
    )
    code, out = run("learn", "disable", "cli", "--reason", "done")
    assert code == 0 and "learning off" in out
    last = stack.opt.read_log(0, 1000, "deployment-cli").events[-1].payload.learning_policy_set
    assert not last.enabled and last.reason == "done" and last.policy.min_new_examples == 10


def test_a_job_the_optimizer_refuses_ends_its_run_once(stack: Stack) -> None:
    a, _ = stack.gateways
    a.set_learning_policy("refused", optimizer="LabeledFewShot", params={"k": -3}, min_new_examples=10)
    labelled(a, "refused", ROWS[4:16], 5000)
    assert wait_until(lambda: bool(of_type(stream(stack.opt, "refused"), "LearningRunEnded")), timeout=60)
    [ended] = of_type(stream(stack.opt, "refused"), "LearningRunEnded")
    e = ended.payload.learning_run_ended
    assert e.result == "job_failed" and not e.job_id and "INVALID_ARGUMENT" in e.reason and "k" in e.reason, e
    assert a.get_learning_status("refused").idle.startswith("waiting: ")  # asked once, not every tick
    assert len(of_type(stream(stack.opt, "refused"), "LearningTriggered")) == 1
