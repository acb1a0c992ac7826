"""A gateway that needs a token, and one call it refused: what a test of how refused calls
show up (metrics, spans) starts from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from dspyops.client import GatewayClient
from dspyops.rpc import Security
from gateway_svc.server import GatewayConfig, RunningGateway
from gateway_svc.server import start as start_gateway
from tests.support.harness import ServerThread


@contextmanager
def after_a_refused_call(tmp_path: Path, **config: Any) -> Iterator[ServerThread[RunningGateway]]:
    """A gateway on a new log with one reader's token (which no call sends) and `config`,
    after its ListDeploymentStates refused a call without a token as UNAUTHENTICATED."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{'0' * 64} reader someone\n")
    settings = GatewayConfig(
        log=str(tmp_path / "log.db"),
        create=True,
        canary_interval=0,
        learning_interval=0,
        security=Security(tokens_file=str(tokens)),
        **config,
    )
    gateway = ServerThread(lambda: start_gateway(settings))
    try:
        with GatewayClient(gateway.address) as gw, pytest.raises(grpc.RpcError) as refused:
            gw.list_deployment_states()
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        yield gateway
    finally:
        gateway.stop()
