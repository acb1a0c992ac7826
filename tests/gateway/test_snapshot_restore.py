"""A gateway that starts from a snapshot takes its versions' artifacts from their
VersionRegistered events (gateway_svc.restore): the same artifacts a full replay gathers,
and a tampered one still refused at Predict (not at start) when told --allow-broken-log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest

from dspyops.client import GatewayClient
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.proto import events_pb2 as pb
from dspyops.snapshots import take_snapshot
from dspyops.snapshots.sqlite import SQLiteSnapshotStore, snapshot_path
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from tests.kernel.test_snapshots import _registered_version
from tests.support.harness import ServerThread


def _deployed_version(log: str) -> None:
    """Version 1.0.0 of p registered and serving all of deployment web."""
    _registered_version(log)
    store = open_store(log)
    routes = [pb.Route(version="1.0.0", weight=1.0)]
    store.append("deployment-web", [new_event(pb.RoutesSet(deployment="web", routes=routes))], 1)
    store.close()


def _snapshot(log: str) -> None:
    store = open_store(log)
    snapshots = SQLiteSnapshotStore(snapshot_path(log))
    take_snapshot(store, snapshots)
    snapshots.close()
    store.close()


def _tamper_artifact(log: str) -> None:
    db = sqlite3.connect(log)
    position, payload = db.execute(
        "SELECT position, payload FROM events WHERE type = 'dspyops.v1.VersionRegistered'"
    ).fetchone()
    registered = pb.VersionRegistered.FromString(payload)
    tampered = registered.artifact.replace(b"label", b"lab3l", 1)
    assert tampered != registered.artifact
    registered.artifact = tampered
    db.execute("UPDATE events SET payload = ? WHERE position = ?", (registered.SerializeToString(), position))
    db.commit()
    db.close()


def test_a_restored_gateway_holds_the_artifacts_a_full_replay_gathers(tmp_path: Path) -> None:
    replayed_log, restored_log = str(tmp_path / "replayed.db"), str(tmp_path / "restored.db")
    _deployed_version(replayed_log)
    _deployed_version(restored_log)
    _snapshot(restored_log)
    replayed = ServerThread(lambda: start_gateway(GatewayConfig(log=replayed_log, canary_interval=0)))
    restored = ServerThread(lambda: start_gateway(GatewayConfig(log=restored_log, canary_interval=0)))
    try:
        assert replayed.running.replica.folded == 3 and restored.running.replica.folded == 0
        assert restored.running.replica.artifacts == replayed.running.replica.artifacts
        assert len(restored.running.replica.artifacts) == 1
        with GatewayClient(restored.address) as gw:
            assert gw.predict("web", {"text": "hello"}).version == "1.0.0"
    finally:
        replayed.stop()
        restored.stop()


def test_a_tampered_artifact_under_a_snapshot_is_refused_at_predict_not_at_start(tmp_path: Path) -> None:
    log = str(tmp_path / "log.db")
    _deployed_version(log)
    _snapshot(log)
    _tamper_artifact(log)
    gateway = ServerThread(
        lambda: start_gateway(GatewayConfig(log=log, canary_interval=0, allow_broken_log=True))
    )
    try:
        assert gateway.running.replica.folded == 0  # started from the snapshot
        # serving once start returns, though the snapshot was at the head (failed before: the
        # source had not connected yet, and a Predict sent at once got UNAVAILABLE)
        assert gateway.running.replica.readiness.ready
        with GatewayClient(gateway.address) as gw:
            with pytest.raises(grpc.RpcError) as err:
                gw.predict("web", {"text": "refund please"})
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "p 1.0.0 fails verification" in str(err.value.details())
            assert gw.get_deployment_state("web").program == "p"  # still serving the rest
    finally:
        gateway.stop()
