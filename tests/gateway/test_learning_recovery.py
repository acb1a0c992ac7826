"""A gateway that appends a LearningTriggered and never gets its job started (its optimizer
link is dead, then it stops) leaves the run to the others: the next gateways to tick find a
triggered run without a job and start it, the same request (its id is the run's) from each,
so the optimizer accepts one job, and the run ends once."""

from __future__ import annotations

from pathlib import Path

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()
DEAD = "127.0.0.1:9"  # nothing listens there: every StartOptimization fails UNAVAILABLE


def events_of(opt: OptimizerClient, prefix: str, kind: str) -> list[pb.Event]:
    return [e for e in opt.read_log(0, 1000, prefix).events if e.type == f"dspyops.v1.{kind}"]


def test_a_run_whose_gateway_died_before_its_job_is_started_once_by_the_others(tmp_path: Path) -> None:
    log = str(tmp_path / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp_path / "data")))
    opt = OptimizerClient(optimizer.address)
    try:
        events = list(
            opt.start_optimization(
                "tickets", "text -> label", trainset=ROWS[:4], optimizer="LabeledFewShot", params={"k": 1}
            )
        )
        assert events[-1].WhichOneof("kind") == "completed"
        opt.create_deployment("web", "tickets")
        opt.set_routes("web", {"1.0.0": 1.0})
        opt.set_capture_policy("web", inputs_outputs=True)
        # the policy through a gateway without a learning optimizer (which has none to ask
        # about optimizer names, and whose loop starts nothing)
        plain = ServerThread(lambda: start_gateway(GatewayConfig(log=log, learning_interval=0.1)))
        with GatewayClient(plain.address) as gw:
            status = gw.set_learning_policy(
                "web", optimizer="LabeledFewShot", params={"k": 16}, min_new_examples=10
            )
            assert "has no --learning-optimizer" in status.idle
        plain.stop()
        doomed = ServerThread(
            lambda: start_gateway(GatewayConfig(log=log, learning_interval=0.1, learning_optimizer=DEAD))
        )
        with GatewayClient(doomed.address) as gw:
            for i, row in enumerate(ROWS[4:20]):
                answer = gw.predict("web", {"text": row["text"]}, routing_key=f"u{i}")
                gw.record_outcome(answer.prediction_id, 0.0, expected={"label": row["label"]})
            assert wait_until(lambda: events_of(opt, "deployment-web", "LearningTriggered") != [], timeout=30)
            assert wait_until(lambda: "did not answer (UNAVAILABLE)" in gw.get_learning_status("web").loop)
            status = gw.get_learning_status("web")
            assert status.active.triggered.run_id and not status.active.job_id
        doomed.stop()
        [triggered] = events_of(opt, "deployment-web", "LearningTriggered")
        run = triggered.payload.learning_triggered
        assert events_of(opt, "job-", "JobAccepted")[1:] == []  # only the base job so far
        # two gateways with a live link take over: one job for the run, whoever asks
        config = GatewayConfig(log=log, learning_interval=0.1, learning_optimizer=optimizer.address)
        survivors = [ServerThread(lambda: start_gateway(config)) for _ in range(2)]
        try:
            assert wait_until(lambda: events_of(opt, "deployment-web", "LearningRunEnded") != [], timeout=90)
            jobs = [e.payload.job_accepted for e in events_of(opt, "job-", "JobAccepted")]
            retrains = [j for j in jobs if j.learning.run_id]
            assert [(j.learning.deployment, j.learning.run_id) for j in retrains] == [("web", run.run_id)]
            [ended] = events_of(opt, "deployment-web", "LearningRunEnded")
            assert ended.payload.learning_run_ended.job_id == retrains[0].job_id
            assert ended.payload.learning_run_ended.result in ("canary_started", "gate_failed")
            assert len(events_of(opt, "deployment-web", "LearningTriggered")) == 1
        finally:
            for server in survivors:
                server.stop()
    finally:
        opt.close()
        optimizer.stop()
