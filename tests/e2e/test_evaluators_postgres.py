"""Online evaluators on a PostgreSQL log (real servers in-process, the records in the log's
database): predictions served by one gateway, outcomes told to another, scored by a metric
evaluator; both gateways read the same scores, and the human results stay the humans'."""

from __future__ import annotations

from pathlib import Path

from dspyops.client import GatewayClient, OptimizerClient
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()


def test_scores_are_shared_by_the_gateways_of_a_postgres_log_and_kept_apart(
    tmp_path: Path, postgres_url: str
) -> None:
    optimizer = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=postgres_url, data_dir=tmp_path / "d"))
    )
    gateways = [
        ServerThread(
            lambda: start_gateway(GatewayConfig(log=postgres_url, canary_interval=0, drift_interval=0))
        )
        for _ in range(2)
    ]
    opt = OptimizerClient(optimizer.address)
    a, b = (GatewayClient(s.address) for s in gateways)
    try:
        for k in (16, 4):
            events = list(
                opt.start_optimization(
                    "tickets",
                    "text -> label",
                    trainset=ROWS[:60],
                    optimizer="LabeledFewShot",
                    params={"k": k},
                )
            )
            assert events[-1].WhichOneof("kind") == "completed"
        opt.create_deployment("web", "tickets")
        opt.set_routes("web", {"1.0.0": 1.0})
        head = opt.read_log(0, 1).head
        assert wait_until(
            lambda: all(g.list_deployment_states().log_position >= head for g in (a, b)), timeout=30
        )
        a.start_experiment("web", "1.0.0", ["1.1.0"], min_samples_per_arm=1000)
        a.set_evaluator("web", "zero", metric="exact_match")
        head = opt.read_log(0, 1).head
        assert wait_until(
            lambda: all(g.list_deployment_states().log_position >= head for g in (a, b)), timeout=30
        )
        for i in range(20):
            answer = a.predict("web", {"text": ROWS[60 + i]["text"]}, routing_key=f"u{i}")
            b.record_outcome(answer.prediction_id, 1.0, expected={"label": "nonsense"})  # scored 0 on b
        assert wait_until(lambda: b.list_evaluators("web").evaluators[0].scored == 20, timeout=30)
        for gw in (a, b):  # the scores are in the shared records: both see them
            s = gw.list_evaluators("web").evaluators[0]
            assert (s.n, s.mean) == (20, 0.0)
            human = gw.get_experiment_results("web")
            assert sum(arm.n for arm in human.arms) == 20 and all(
                arm.mean == 1.0 for arm in human.arms if arm.n
            )
            zero = gw.get_experiment_results("web", source="evaluator:zero")
            assert sum(arm.n for arm in zero.arms) == 20 and all(
                arm.mean == 0.0 for arm in zero.arms if arm.n
            )
    finally:
        a.close()
        b.close()
        opt.close()
        for server in reversed(gateways):
            server.stop()
        optimizer.stop()
