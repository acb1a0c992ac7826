"""One run of `dspyops`: the global options (addresses, credentials, the request id), the
clients they open, and which command ran (for the error hint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dspyops.client import GatewayClient, OptimizerClient

if TYPE_CHECKING:
    import click

DEFAULT_OPTIMIZER = "127.0.0.1:50051"
DEFAULT_GATEWAY = "127.0.0.1:50052"


@dataclass
class Session:
    optimizer_address: str = DEFAULT_OPTIMIZER
    optimizer_replicas: tuple[str, ...] = ()  # further --optimizer addresses (one log): failover targets
    gateway_address: str = DEFAULT_GATEWAY
    token: str = ""
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    # one id for the call this command makes (a fresh one unless --request-id), so the hint
    # after a timeout can name it
    request_id: str = ""
    command: click.Command | None = None  # the command that ran

    def optimizer(self) -> OptimizerClient:
        return OptimizerClient(
            self.optimizer_address,
            token=self.token,
            tls_ca=self.tls_ca,
            tls_cert=self.tls_cert,
            tls_key=self.tls_key,
        )

    def gateway(self) -> GatewayClient:
        return GatewayClient(
            self.gateway_address,
            token=self.token,
            tls_ca=self.tls_ca,
            tls_cert=self.tls_cert,
            tls_key=self.tls_key,
        )
