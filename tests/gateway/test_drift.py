"""Drift monitors through the real servers (an optimizer and two gateways on one SQLite log,
sharing its records file, each running the drift loop on a short interval): outcomes at the
reference rate detect nothing; a drop appends exactly one DriftDetected, with its statistics,
window and reference, seen in ReadLog, GetDriftStatus and `dspyops drift status`, although
both gateways check; a threshold signal is detected once too; setting the monitor again
re-arms it; `drift disable` turns it off."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
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
TRAIN, VAL = ROWS[:60], ROWS[60:]
DETECTED = "dspyops.v1.DriftDetected"


@dataclass
class Stack:
    opt: OptimizerClient
    gateways: list[GatewayClient]
    addresses: list[str]
    score: float  # the offline score of tickets 1.0.0 on VAL


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("drift")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    opt = OptimizerClient(optimizer.address)
    events = list(
        opt.start_optimization(
            "tickets",
            "text -> label",
            trainset=TRAIN,
            valset=VAL,
            optimizer="LabeledFewShot",
            params={"k": 16},
        )
    )
    assert events[-1].WhichOneof("kind") == "completed"
    score = list(opt.evaluate("tickets", "1.0.0", dataset=VAL))[-1].report.score
    for name in ("offline", "window", "cli"):
        opt.create_deployment(name, "tickets")
        opt.set_routes(name, {"1.0.0": 1.0})
    gateways = [
        ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0, drift_interval=0.1)))
        for _ in range(2)
    ]
    clients = [GatewayClient(s.address) for s in gateways]
    head = opt.read_log(0, 1).head
    for client in clients:
        assert wait_until(lambda c=client: c.list_deployment_states().log_position >= head)  # type: ignore[misc]
    yield Stack(opt, clients, [optimizer.address, *(s.address for s in gateways)], score)
    for client in clients:
        client.close()
    opt.close()
    for server in reversed(gateways):
        server.stop()
    optimizer.stop()


def outcomes(gw: GatewayClient, deployment: str, rate: float, count: int, start: int) -> None:
    """`count` predictions with outcomes at exactly `rate` (1 whenever the running share of
    successes would fall below it), so the test's rates are not left to chance."""
    successes = 0
    for i in range(count):
        answer = gw.predict(deployment, {"text": VAL[i % len(VAL)]["text"]}, routing_key=f"u{start + i}")
        value = 1.0 if successes < rate * (i + 1) else 0.0
        successes += int(value)
        gw.record_outcome(answer.prediction_id, value)


def detections(opt: OptimizerClient, deployment: str) -> list[pb.DriftDetected]:
    events = opt.read_log(0, 1000, f"deployment-{deployment}").events
    return [e.payload.drift_detected for e in events if e.type == DETECTED]


def both_checked(stack: Stack, deployment: str, words: str) -> bool:
    """Both gateways' last periodic check of `deployment` says `words`."""
    return all(words in gw.get_drift_status(deployment).check for gw in stack.gateways)


def test_no_drift_at_the_reference_rate_then_one_detection_when_outcomes_drop(stack: Stack) -> None:
    a, b = stack.gateways
    assert 0.3 < stack.score < 1.0, f"the offline score {stack.score} leaves no room for a drop"
    status = a.set_drift_monitor("offline", min_outcomes=40, reason="watch it")
    assert status.monitor.enabled and status.monitor.reference == "offline" and status.monitor.alpha == 0.05
    assert status.version == "1.0.0" and f"offline score {stack.score:.3f}" in status.reference
    assert wait_until(lambda: b.get_deployment_state("offline").drift == status.monitor)  # folded there too
    outcomes(a, "offline", stack.score, 200, 0)
    # both gateways have checked all 200 outcomes: nothing drifted, nothing appended
    assert wait_until(lambda: both_checked(stack, "offline", "outcome_rate: "), timeout=30)
    assert wait_until(lambda: all(gw.get_drift_status("offline").signals[0].n >= 200 for gw in (a, b)))
    assert wait_until(lambda: all("ok" in gw.get_drift_status("offline").check for gw in (a, b)), timeout=30)
    assert detections(stack.opt, "offline") == []
    # the rate drops by 0.4: detected, once, although both gateways check
    outcomes(b, "offline", stack.score - 0.4, 200, 1000)
    assert wait_until(lambda: detections(stack.opt, "offline") != [], timeout=30)
    assert wait_until(lambda: both_checked(stack, "offline", "drifted (detected at position"), timeout=30)
    found = detections(stack.opt, "offline")
    assert len(found) == 1, found
    d = found[0]
    assert (d.deployment, d.version, d.signal) == ("offline", "1.0.0", "outcome_rate")
    s = d.statistics
    assert s.drifted and s.p_value <= 0.05 and s.value < s.reference == pytest.approx(stack.score)
    # detected while the drop's traffic went on: a prediction may wait for its outcome
    assert s.n == d.window.outcomes > 200 and d.window.n >= d.window.outcomes
    assert 0 < d.window.first_us <= d.window.last_us and d.window.from_position > 0
    assert "offline score" in d.reference and "always-valid p=" in d.reason
    status = b.get_drift_status("offline")
    assert [(x.version, x.signal) for x in status.detections] == [("1.0.0", "outcome_rate")]
    assert status.detections[0].statistics.p_value == pytest.approx(s.p_value)


def test_a_window_reference_and_a_latency_threshold_each_detect_once_until_re_armed(stack: Stack) -> None:
    a, b = stack.gateways
    # every prediction takes longer than a microsecond: latency p95 is over the threshold
    a.set_drift_monitor(
        "window", reference="window", reference_window=60, min_outcomes=40, max_latency_p95_ms=0.001
    )
    outcomes(a, "window", 0.9, 60, 0)
    assert wait_until(
        lambda: [d.signal for d in detections(stack.opt, "window")] == ["latency_p95"], timeout=30
    )
    status = b.get_drift_status("window")
    assert "the first 60 outcomes" in status.reference and status.signals[0].reference == pytest.approx(
        0.9, abs=0.02
    )
    outcomes(b, "window", 0.3, 120, 1000)
    assert wait_until(lambda: len(detections(stack.opt, "window")) == 2, timeout=30)
    assert wait_until(
        lambda: both_checked(stack, "window", "outcome_rate: 0.3 drifted (detected"), timeout=30
    )
    found = detections(stack.opt, "window")
    assert [d.signal for d in found] == ["latency_p95", "outcome_rate"]
    assert found[1].statistics.reference_n == 60 and found[1].statistics.p_value <= 0.05
    assert found[0].statistics.value > 0.001 and found[0].reference == "threshold 0.001"
    # set again: re-armed, detections start over, and the window starts at the new monitor
    status = a.set_drift_monitor(
        "window", reference="window", reference_window=60, min_outcomes=40, max_latency_p95_ms=0.001
    )
    assert list(status.detections) == [] and status.window.n == 0
    outcomes(a, "window", 0.9, 60, 2000)
    assert wait_until(lambda: len(detections(stack.opt, "window")) == 3, timeout=30)
    assert detections(stack.opt, "window")[-1].signal == "latency_p95"


def test_drift_cli_enable_status_disable(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    addresses = ["--optimizer", stack.addresses[0], "--gateway", stack.addresses[1]]

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main([*addresses, *args])
        return code, capsys.readouterr().out

    code, out = run("drift", "status", "cli")
    assert code == 0 and "no drift monitor (off)" in out
    code, out = run("drift", "enable", "cli", "--min-outcomes", "20", "--max-error-rate", "0.2")
    assert code == 0, out
    assert "drift monitor on 1.0.0" in out and "error rate > 0.2" in out and "outcome_rate" in out
    outcomes(stack.gateways[0], "cli", 0.0, 30, 0)
    assert wait_until(lambda: detections(stack.opt, "cli") != [], timeout=30)
    code, out = run("drift", "status", "cli")
    assert code == 0 and "1.0.0 outcome_rate: 0 vs" in out
    code, out = run("log", "read", "--stream", "deployment-cli")
    assert "drift of 1.0.0 on outcome_rate" in out and "drift monitor of cli" in out
    code, out = run("drift", "disable", "cli", "--reason", "done")
    assert code == 0 and "no drift monitor (off)" in out
    last = stack.opt.read_log(0, 1000, "deployment-cli").events[-1]
    assert (
        last.payload.drift_monitor_set.monitor.enabled is False
        and last.payload.drift_monitor_set.reason == "done"
    )


def test_on_a_postgresql_log_two_gateways_sharing_its_records_detect_once(
    tmp_path: Path, postgres_url: str
) -> None:
    optimizer = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=postgres_url, data_dir=tmp_path / "data"))
    )
    opt = OptimizerClient(optimizer.address)
    gateways: list[ServerThread] = []
    clients: list[GatewayClient] = []
    try:
        events = list(
            opt.start_optimization(
                "tickets", "text -> label", trainset=TRAIN, optimizer="LabeledFewShot", params={"k": 4}
            )
        )
        assert events[-1].WhichOneof("kind") == "completed"
        opt.create_deployment("pg", "tickets")
        opt.set_routes("pg", {"1.0.0": 1.0})
        config = GatewayConfig(log=postgres_url, canary_interval=0, drift_interval=0.1)
        gateways = [ServerThread(lambda: start_gateway(config)) for _ in range(2)]
        clients = [GatewayClient(s.address) for s in gateways]
        head = opt.read_log(0, 1).head
        for client in clients:
            assert wait_until(lambda c=client: c.list_deployment_states().log_position >= head)  # type: ignore[misc]
        a, b = clients
        a.set_drift_monitor("pg", reference="window", reference_window=60, min_outcomes=40)
        outcomes(a, "pg", 0.9, 60, 0)
        outcomes(b, "pg", 0.2, 120, 1000)  # the other gateway's traffic: the records are shared
        assert wait_until(lambda: detections(opt, "pg") != [], timeout=30)
        assert wait_until(
            lambda: all("drifted (detected at position" in gw.get_drift_status("pg").check for gw in clients),
            timeout=30,
        )
        found = detections(opt, "pg")
        assert [(d.signal, d.statistics.reference_n) for d in found] == [("outcome_rate", 60)]
        assert found[0].statistics.n >= 40 and found[0].statistics.p_value <= 0.05
    finally:
        for client in clients:
            client.close()
        opt.close()
        for server in reversed(gateways):
            server.stop()
        optimizer.stop()


def test_a_retried_set_drift_monitor_appends_once(stack: Stack) -> None:
    a, b = stack.gateways
    stack.opt.create_deployment("retried", "tickets")
    stack.opt.set_routes("retried", {"1.0.0": 1.0})
    head = stack.opt.read_log(0, 1).head
    assert wait_until(lambda: all(gw.list_deployment_states().log_position >= head for gw in (a, b)))
    first = a.set_drift_monitor("retried", max_error_rate=0.1, request_id="drift-r1")
    again = b.set_drift_monitor("retried", max_error_rate=0.1, request_id="drift-r1")  # another gateway
    assert first.monitor == again.monitor and first.armed_position == again.armed_position
    with pytest.raises(grpc.RpcError) as refused:
        a.set_drift_monitor("retried", max_error_rate=0.2, request_id="drift-r1")
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS and "request_id" in str(
        refused.value.details()
    )
    events = stack.opt.read_log(0, 1000, "deployment-retried").events
    assert [e.type.rsplit(".", 1)[-1] for e in events].count("DriftMonitorSet") == 1


def test_the_cost_per_prediction_is_read_from_the_traces_the_capture_policy_keeps(stack: Stack) -> None:
    """The offline LM reports no cost, so the mean is 0 (under any threshold): what is under
    test is that the kept traces reach the signal, and that without them it says why."""
    a = stack.gateways[0]
    for name, traces in (("costed", True), ("uncosted", False)):
        stack.opt.create_deployment(name, "tickets")
        stack.opt.set_routes(name, {"1.0.0": 1.0})
        if traces:
            stack.opt.set_capture_policy(name, traces=True)
        head = stack.opt.read_log(0, 1).head
        assert wait_until(lambda h=head: a.list_deployment_states().log_position >= h)  # type: ignore[misc]
        a.set_drift_monitor(name, min_outcomes=20, max_cost_per_prediction=0.01)
        outcomes(a, name, 1.0, 25, 0)
    costed = next(s for s in a.get_drift_status("costed").signals if s.signal == "cost_per_prediction")
    assert (costed.n, costed.value, costed.drifted, costed.note) == (25, 0.0, False, "")
    uncosted = next(s for s in a.get_drift_status("uncosted").signals if s.signal == "cost_per_prediction")
    assert uncosted.n == 0 and "0 of 20 predictions with a kept trace" in uncosted.note


def test_a_version_never_evaluated_has_its_jobs_final_score_as_offline_reference(stack: Stack) -> None:
    """A freshly deployed version has no EvaluationRecorded; the final evaluation of the job
    that made it is its offline score (before, such a monitor had no reference and could
    never detect an outcome drop)."""
    events = list(
        stack.opt.start_optimization(
            "tickets",
            "text -> label",
            trainset=TRAIN,
            valset=VAL,
            optimizer="LabeledFewShot",
            params={"k": 8},
        )
    )
    completed = events[-1]
    assert completed.WhichOneof("kind") == "completed"
    version = completed.completed.version
    stack.opt.create_deployment("fresh", "tickets")
    head = stack.opt.set_routes("fresh", {version: 1.0}).log_position
    a = stack.gateways[0]
    assert wait_until(lambda: a.list_deployment_states().log_position >= head)
    status = a.set_drift_monitor("fresh", min_outcomes=40)
    final = completed.completed.final_score
    assert status.version == version and f"final score {final:.3f}" in status.reference
    assert completed.job_id in status.reference


def test_a_perfect_offline_score_is_taken_by_the_rule_of_succession(stack: Stack) -> None:
    """A version scoring exactly 1 on its job's 10 validation examples: the one-sample test
    against 1 would call its first wrong answer a drift (p = 0); the reference is (10 + 1) /
    (10 + 2) instead (before, the learning demo's promoted version drifted on its first miss)."""
    events = list(
        stack.opt.start_optimization(
            "tickets",
            "text -> label",
            trainset=TRAIN[:10],
            valset=TRAIN[:10],
            optimizer="LabeledFewShot",
            params={"k": 10},
        )
    )
    completed = events[-1]
    assert completed.WhichOneof("kind") == "completed" and completed.completed.final_score == 1.0
    stack.opt.create_deployment("perfect", "tickets")
    head = stack.opt.set_routes("perfect", {completed.completed.version: 1.0}).log_position
    a = stack.gateways[0]
    assert wait_until(lambda: a.list_deployment_states().log_position >= head)
    status = a.set_drift_monitor("perfect", min_outcomes=40)
    assert "final score 1.000" in status.reference
    assert "taken as 0.917 by the rule of succession (n=10)" in status.reference
