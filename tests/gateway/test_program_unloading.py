"""A gateway holds loaded only the versions that can serve or judge now (issue 17), and the few
that stopped serving last (--keep-idle-programs): a version routed away from is unloaded as
the log moves on once more than that many idle, shadows and experiment arms stay loaded, a
version needed again is loaded again, and a route back to a kept one loads nothing. Real
optimizer and gateways, the counts read from each gateway's /metrics
(dspyops_gateway_loaded_programs, dspyops_gateway_program_loads_total)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

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
    gw: GatewayClient  # keeps no idle program loaded
    metrics_port: int
    kept: GatewayClient  # keeps the one that stopped serving last
    kept_metrics_port: int

    def loaded(self, port: int | None = None) -> float:
        return value(scrape(port or self.metrics_port), "dspyops_gateway_loaded_programs")

    def loads(self, port: int) -> float:
        return value(scrape(port), "dspyops_gateway_program_loads_total")

    def routes(self, primary: dict[str, float], shadows: dict[str, float] | None = None) -> None:
        routes = [pb.Route(version=v, weight=w, role=pb.PRIMARY) for v, w in primary.items()]
        routes += [pb.Route(version=v, weight=w, role=pb.SHADOW) for v, w in (shadows or {}).items()]
        position = self.opt.set_routes("web", routes, reason="test").log_position
        for gw in (self.gw, self.kept):
            assert wait_until(partial(_at, gw, position))


def _at(gw: GatewayClient, position: int) -> bool:
    return gw.list_deployment_states().log_position >= position


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("unloading")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    gateways: list[ServerThread] = []
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
            for keep in (0, 1):
                config = GatewayConfig(
                    log=log, canary_interval=0, learning_interval=0, metrics_port=0, keep_idle_programs=keep
                )
                gateways.append(ServerThread(partial(start_gateway, config)))
            with GatewayClient(gateways[0].address) as gw, GatewayClient(gateways[1].address) as kept:
                head = opt.read_log(0, 1).head
                for client in (gw, kept):
                    assert wait_until(partial(_at, client, head))
                ports = [g.running.metrics.port for g in gateways]
                yield Stack(opt, gw, ports[0], kept, ports[1])
    finally:
        for gateway in gateways:
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


def test_a_route_back_to_a_version_kept_idle_loads_nothing_and_older_idle_ones_are_unloaded(
    stack: Stack,
) -> None:
    port = stack.kept_metrics_port
    stack.routes({"1.0.0": 1.0})
    assert stack.kept.predict("web", TEXT).version == "1.0.0"
    stack.routes({"1.1.0": 1.0})
    assert stack.kept.predict("web", TEXT).version == "1.1.0"
    assert stack.loaded(port) == 2  # 1.0.0 stopped serving last: kept
    loads = stack.loads(port)
    stack.routes({"1.0.0": 1.0})  # a rollback
    assert stack.kept.predict("web", TEXT).version == "1.0.0"
    assert stack.loads(port) == loads  # served by the program it kept
    stack.routes({"1.2.0": 1.0})
    assert stack.kept.predict("web", TEXT).version == "1.2.0"
    # 1.1.0 (idle since the rollback) was unloaded when 1.0.0 became the newer idle one
    assert stack.loaded(port) == 2
    assert stack.loads(port) == loads + 1
    stack.routes({"1.1.0": 1.0})
    assert stack.kept.predict("web", TEXT).version == "1.1.0"
    assert stack.loads(port) == loads + 2  # loaded again


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
