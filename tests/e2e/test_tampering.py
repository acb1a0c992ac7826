"""A tampered artifact is refused and reported: the log's verify names the row, a gateway
refuses to start on the broken chain, and one started with --allow-broken-log answers
FAILED_PRECONDITION naming the version instead of running it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import open_store
from dspyops.logstart import StartRefused
from dspyops.proto import events_pb2 as pb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows


def test_a_tampered_artifact_is_refused_and_reported(tmp_path: Path) -> None:
    log = str(tmp_path / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp_path / "data")))
    with OptimizerClient(optimizer.address) as opt:
        events = list(
            opt.start_optimization(
                "p", "text -> label", trainset=ticket_rows()[:20], optimizer="LabeledFewShot", params={"k": 4}
            )
        )
        assert events[-1].WhichOneof("kind") == "completed"
        opt.create_deployment("web", "p")
        opt.set_routes("web", {"1.0.0": 1.0})
    optimizer.stop()

    db = sqlite3.connect(log)
    position, payload = db.execute(
        "SELECT position, payload FROM events WHERE type = 'dspyops.v1.VersionRegistered'"
    ).fetchone()
    registered = pb.VersionRegistered.FromString(payload)
    registered.artifact = registered.artifact.replace(b'"label"', b'"lab3l"', 1)  # one demo field, quietly
    assert registered.artifact != pb.VersionRegistered.FromString(payload).artifact
    db.execute("UPDATE events SET payload = ? WHERE position = ?", (registered.SerializeToString(), position))
    db.commit()
    db.close()

    store = open_store(log)
    verified = store.verify()
    store.close()
    assert not verified.ok and verified.first_broken_position == position

    # A gateway refuses a broken chain at start (naming the position); told to serve it
    # anyway, it still refuses to run the tampered artifact.
    with pytest.raises(StartRefused, match=f"broken at position {position}"):
        ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
    gateway = ServerThread(
        lambda: start_gateway(GatewayConfig(log=log, canary_interval=0, allow_broken_log=True))
    )
    try:
        with GatewayClient(gateway.address) as gw:
            with pytest.raises(grpc.RpcError) as err:
                gw.predict("web", {"text": "refund please"})
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "p 1.0.0 fails verification" in err.value.details()
            assert gw.get_deployment_state("web").routes[0].version == "1.0.0"  # still serving
    finally:
        gateway.stop()
