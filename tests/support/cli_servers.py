"""Real servers for the per-family CLI tests: an optimizer and a gateway on one log (in
process, on loopback ports), a program with a few imported versions, and `run` to call
`dspyops` as users do (its exit code and what it printed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy
import pytest

from dspyops.cli.main import main
from dspyops.client import GatewayClient, OptimizerClient
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, wait_until

SIG = "text -> label"


def saved_state(tmp: Path, demos: int) -> Path:
    """A state plain DSPy saved (program.save), with `demos` demos."""
    program = dspy.Predict(SIG)
    program.demos = [dspy.Example(text=f"refund for order {i}", label="refund") for i in range(demos)]
    path = tmp / f"state-{demos}.json"
    program.save(str(path))
    return path


@dataclass
class Servers:
    tmp: Path
    log: str
    optimizer: ServerThread
    gateway: ServerThread
    capsys: pytest.CaptureFixture[str] | None = None

    @property
    def addresses(self) -> list[str]:
        return ["--optimizer", self.optimizer.address, "--gateway", self.gateway.address]

    def run(self, *args: str) -> tuple[int, str]:
        """`dspyops ARGS` against these servers: (exit code, stdout)."""
        assert self.capsys is not None, "use the `cli` fixture"
        self.capsys.readouterr()
        code = main([*self.addresses, *args])
        return code, self.capsys.readouterr().out

    def json(self, *args: str) -> list[dict[str, Any]]:
        """`dspyops ARGS --json`, which must succeed: the objects it printed."""
        code, out = self.run(*args, "--json")
        assert code == 0, out
        return [json.loads(line) for line in out.splitlines()]

    def opt(self) -> OptimizerClient:
        return OptimizerClient(self.optimizer.address)

    def gw(self) -> GatewayClient:
        return GatewayClient(self.gateway.address)

    def gateway_caught_up(self) -> None:
        with self.opt() as opt, self.gw() as gw:
            head = opt.read_log(0, 1).head
            assert wait_until(lambda: gw.list_deployment_states().log_position >= head)


def start_servers(tmp: Path, versions: int = 3, **optimizer: Any) -> Servers:
    """Both servers on a fresh log; program "p" with `versions` imported versions
    (1.0.0, 1.1.0, 1.2.0, ...), the first one in production."""
    log = str(tmp / "log.db")
    opt_server = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data", **optimizer))
    )
    with OptimizerClient(opt_server.address) as opt:
        for demos in range(1, versions + 1):
            opt.import_program("p", SIG, saved_state(tmp, demos).read_bytes())
        opt.set_version_status("p", "1.0.0", "production")
    gw_server = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
    return Servers(tmp, log, opt_server, gw_server)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = start_servers(tmp_path_factory.mktemp("cli-servers"))
    yield started
    started.gateway.stop()
    started.optimizer.stop()


@pytest.fixture
def cli(servers: Servers, capsys: pytest.CaptureFixture[str]) -> Servers:
    servers.capsys = capsys
    return servers
