"""SetRoutes (optimizer) and Rollback (gateway) racing on one deployment from the same
stream version: exactly one wins, the other gets ABORTED and can retry on fresh state."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OptimizerClient, GatewayClient]]:
    tmp = tmp_path_factory.mktemp("races")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
    opt, gw = OptimizerClient(optimizer.address), GatewayClient(gateway.address)
    for k in (2, 8):
        list(
            opt.start_optimization(
                "p", "text -> label", trainset=ROWS[:20], optimizer="LabeledFewShot", params={"k": k}
            )
        )
    opt.create_deployment("web", "p")
    opt.set_routes("web", {"1.0.0": 1.0})
    yield opt, gw
    gw.close()
    opt.close()
    gateway.stop()
    optimizer.stop()


def race_once(opt: OptimizerClient, gw: GatewayClient, version: int, to: int, label: str) -> dict[str, str]:
    """SetRoutes and Rollback released at once, both expecting stream version `version`."""
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(name: str, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
            outcomes[name] = "won"
        except grpc.RpcError as exc:
            outcomes[name] = exc.code().name

    calls = {
        "routes": lambda: opt.set_routes(
            "web", {"1.0.0": 0.5, "1.1.0": 0.5}, expected_version=version, reason=label
        ),
        "rollback": lambda: gw.rollback("web", to, expected_version=version, reason=label),
    }
    threads = [threading.Thread(target=attempt, args=item) for item in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_set_routes_and_rollback_race_one_winner_each_round(
    clients: tuple[OptimizerClient, GatewayClient],
) -> None:
    opt, gw = clients
    first_routes = opt.read_log(0, 1000, "deployment-web").events[-1].position  # routes 1.0.0 only
    won = {"routes": 0, "rollback": 0}
    for round_ in range(10):
        current = opt.get_deployment("web")
        assert wait_until(lambda c=current: gw.get_deployment_state("web").stream_version == c.stream_version)
        outcomes = race_once(opt, gw, current.stream_version, first_routes, f"round {round_}")
        assert sorted(outcomes.values()) == ["ABORTED", "won"], outcomes
        assert opt.get_deployment("web").stream_version == current.stream_version + 1
        won[next(name for name, outcome in outcomes.items() if outcome == "won")] += 1
    assert sum(won.values()) == 10
