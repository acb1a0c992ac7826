"""Shadow routes: a share of requests is copied to the shadow version, whose answers are
recorded and compared with the primary's, and never returned."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OptimizerClient, GatewayClient]]:
    tmp = tmp_path_factory.mktemp("shadow")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    opt = OptimizerClient(optimizer.address)
    for k in (4, 16):
        events = list(
            opt.start_optimization(
                "tickets",
                "text -> label",
                trainset=ROWS[:60],
                valset=ROWS[60:],
                optimizer="LabeledFewShot",
                params={"k": k},
            )
        )
        assert events[-1].WhichOneof("kind") == "completed"
    opt.create_deployment("web", "tickets")
    opt.set_routes(
        "web",
        [
            pb.Route(version="1.0.0", weight=1.0, role=pb.PRIMARY),
            pb.Route(version="1.1.0", weight=0.5, role=pb.SHADOW),
        ],
    )
    gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
    gw = GatewayClient(gateway.address)
    head = opt.read_log(0, 1).head
    assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
    yield opt, gw
    gw.close()
    opt.close()
    gateway.stop()
    optimizer.stop()


def test_shadow_copies_are_recorded_compared_and_never_served(
    clients: tuple[OptimizerClient, GatewayClient],
) -> None:
    _, gw = clients
    served = {
        gw.predict("web", {"text": row["text"]}, routing_key=f"u{i}").version
        for i, row in enumerate(ROWS[60:] * 3)
    }
    assert served == {"1.0.0"}
    assert wait_until(lambda: sum(v.n for v in gw.get_shadow_results("web").versions) >= 25, 10)
    (result,) = gw.get_shadow_results("web").versions
    assert result.version == "1.1.0" and result.errors == 0
    assert 25 <= result.n <= 95  # about half of 120 requests
    assert 0.0 < result.agreement < 1.0  # 4 demos vs 16 demos: they agree on some tickets, not all
    assert result.latency_p50_ms > 0 and result.primary_latency_p50_ms > 0
