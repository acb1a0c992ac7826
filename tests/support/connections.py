"""What the connection tests share: a loopback fake provider, a server environment with
planted keys, a connections file naming them, and servers started with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dspyops.client import OptimizerClient
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.fake_provider import FakeProvider
from tests.support.harness import ServerThread, ticket_rows

ROWS = ticket_rows()[:6]
PLANTED = "planted-" + "5e1c7a" * 6  # a secret of the server's environment no connection names
AMBIENT = "sk-ambient-" + "9b2d4f" * 6  # the server's own OPENAI_API_KEY
FAKE_KEY = "sk-fake-provider-" + "31d0" * 6  # the key the "keyed" connection names
BAD = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers of these tests run in this process: their environment holds an AWS-style
    secret, an ambient OpenAI key, and the key one connection names."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PLANTED)
    monkeypatch.setenv("OPENAI_API_KEY", AMBIENT)
    monkeypatch.setenv("FAKE_PROVIDER_KEY", FAKE_KEY)


def connections_file(tmp_path: Path, provider: FakeProvider, extra: str = "") -> Path:
    path = tmp_path / "connections.toml"
    path.write_text(
        f"""
[connections.fake]
api_base = "{provider.api_base}"
models = ["m1", "family-*"]
default_max_tokens = 64
max_tokens_cap = 256
max_temperature = 1.0

[connections.keyed]
provider = "openai/"
api_base = "{provider.api_base}"
api_key_env = "FAKE_PROVIDER_KEY"
models = ["m1"]
input_usd_per_mtok = 2000.0
output_usd_per_mtok = 10000.0
{extra}
"""
    )
    return path


def optimizer_thread(tmp_path: Path, **config: object) -> ServerThread:
    log = str(tmp_path / "log.db")
    return ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp_path / "data", **config))  # type: ignore[arg-type]
    )


def gateway_thread(tmp_path: Path, **config: object) -> ServerThread:
    log = str(tmp_path / "log.db")
    return ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0, **config)))  # type: ignore[arg-type]


def job(opt: OptimizerClient, lm: pb.LMConfig, program: str = "t") -> list[opb.OptimizationEvent]:
    return list(
        opt.start_optimization(
            program, "text -> label", trainset=ROWS, optimizer="LabeledFewShot", params={"k": 2}, lm=lm
        )
    )
