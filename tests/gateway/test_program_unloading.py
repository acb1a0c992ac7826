"""A gateway holds loaded only the versions that can serve or judge now (issue 17): a version
routed away from is unloaded as the log moves on, shadows and experiment arms stay loaded,
and a version needed again is loaded again. Real optimizer and gateway, the count read from
the gateway's /metrics (dspyops_gateway_loaded_programs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until
from tests.support.scrape import scrape, value

ROWS = ticket_rows()
TEXT = {"text": ROWS[0]["text"]}


@dataclass
class Stack:
    opt: OptimizerClient
    gw: GatewayClient
    metrics_port: int

    def loaded(self) -> float:
        return value(scrape(self.metrics_port), "dspyops_gateway_loaded_programs")

    def routes(self, primary: dict[str, float], shadows: dict[str, float] | None = None) -> None:
        routes = [pb.Route(version=v, weight=w, role=pb.PRIMARY) for v, w in primary.items()]
        routes += [pb.Route(version=v, weight=w, role=pb.SHADOW) for v, w in (shadows or {}).items()]
        position = self.opt.set_routes("web", routes, reason="test").log_position
        assert wait_until(lambda: self.gw.get_deployment_state("web").log_position >= position)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("unloading")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    gateway = None
    try:
        with OptimizerClient(optimizer.address) as opt:
            for k in (2, 4, 6):  # three versions, three artifacts
                events = list(
                    opt.start_optimization(
                        "tickets",
                        "text -> label",
                        trainset=ROWS[:30],
                        optimizer="LabeledFewShot",
                        params={"k": k},
                    )
                )
                assert events[-1].WhichOneof("kind") == "completed"
            opt.create_deployment("web", "tickets")
            opt.set_routes("web", {"1.0.0": 1.0}, reason="first")
            gateway = ServerThread(
                lambda: start_gateway(
                    GatewayConfig(log=log, canary_interval=0, learning_interval=0, metrics_port=0)
                )
            )
            with GatewayClient(gateway.address) as gw:
                assert wait_until(lambda: gw.list_deployment_states().log_position >= opt.read_log(0, 1).head)
                yield Stack(opt, gw, gateway.running.metrics.port)  # type: ignore[union-attr]
    finally:
        if gateway is not None:
            gateway.stop()
        optimizer.stop()


def test_a_version_routed_away_from_is_unloaded_and_loaded_again_when_needed(stack: Stack) -> None:
    assert stack.gw.predict("web", TEXT).version == "1.0.0"
    assert stack.loaded() == 1
    stack.routes({"1.1.0": 1.0})
    assert stack.loaded() == 0  # 1.0.0 serves nobody now; 1.1.0 is loaded by its first request
    assert stack.gw.predict("web", TEXT).version == "1.1.0"
    assert stack.loaded() == 1
    stack.routes({"1.0.0": 1.0})
    assert stack.gw.predict("web", TEXT).version == "1.0.0"  # loaded again, from the log's artifact
    assert stack.loaded() == 1


def test_shadows_and_experiment_arms_stay_loaded(stack: Stack) -> None:
    stack.routes({"1.0.0": 1.0}, {"1.2.0": 1.0})
    assert stack.gw.predict("web", TEXT).version == "1.0.0"
    assert wait_until(lambda: stack.loaded() == 2)  # the shadow ran too, nobody waited for it
    state = stack.gw.start_experiment("web", "1.0.0", ["1.1.0"], reason="arms")
    assert wait_until(lambda: stack.gw.get_deployment_state("web").log_position >= state.log_position)
    served = {stack.gw.predict("web", TEXT, routing_key=f"u{i}").version for i in range(40)}
    assert served == {"1.0.0", "1.1.0"}
    assert stack.loaded() == 3  # both arms, and the shadow
    stopped = stack.gw.stop_experiment("web", reason="done")
    assert wait_until(lambda: stack.gw.get_deployment_state("web").log_position >= stopped.log_position)
    assert stack.loaded() == 2  # the treatment arm serves nobody now
