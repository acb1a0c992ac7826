"""A gateway that starts from a snapshot folds only the tail and reads at start only the
artifacts of the versions that serve (any other version's bytes are read from its
VersionRegistered event when it is first loaded), the same bytes a full replay reads, and a
tampered one is refused at Predict (not at start) when told --allow-broken-log. On both kinds
of log: a file with its snapshots beside it, and a PostgreSQL database with its snapshots
table (where a gateway also leaves one when it stops)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import psycopg
import pytest

from dspyops.artifacts import encode_artifact
from dspyops.client import GatewayClient
from dspyops.eventlog import is_server_log, open_store
from dspyops.events import new_event
from dspyops.lm import LMConfig
from dspyops.programs.build import build_module, program_state
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.snapshots import take_snapshot
from dspyops.snapshots.backends import open_snapshots
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


NewLog = Callable[[], str]


@pytest.fixture(params=["sqlite", "postgres"])
def new_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewLog]:
    """Makes the path (or URL) of a new, empty log of the parameter's kind."""
    made: list[str] = []

    def make() -> str:
        if request.param == "sqlite":
            made.append(str(tmp_path / f"log{len(made)}.db"))
        else:
            server = request.getfixturevalue("postgres_server")
            made.append(server.url(server.create_database()))
        return made[-1]

    yield make
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        for url in made:
            server.drop_database(url.rsplit("/", 1)[1])


def _snapshot(log: str) -> None:
    store = open_store(log)
    snapshots = open_snapshots(log)
    take_snapshot(store, snapshots)
    snapshots.close()
    store.close()


def _tamper_artifact(log: str) -> None:
    select = "SELECT position, payload FROM events WHERE type = 'dspyops.v1.VersionRegistered'"
    db: sqlite3.Connection | psycopg.Connection[tuple[object, ...]]
    db = psycopg.connect(log) if is_server_log(log) else sqlite3.connect(log)
    row = db.execute(select).fetchone()
    assert row is not None
    position, payload = row
    registered = pb.VersionRegistered.FromString(bytes(payload))  # type: ignore[arg-type]
    tampered = registered.artifact.replace(b"label", b"lab3l", 1)
    assert tampered != registered.artifact
    registered.artifact = tampered
    update = "UPDATE events SET payload = {0} WHERE position = {0}".format(
        "%s" if is_server_log(log) else "?"
    )
    db.execute(update, (registered.SerializeToString(), position))  # type: ignore[arg-type]
    db.commit()
    db.close()


def _unrouted_version(log: str) -> None:
    """Version 2.0.0 of p registered (another signature, so another artifact), routed nowhere."""
    spec = ProgramSpec(module="Predict", signature="text -> topic")
    digest, artifact = encode_artifact(spec, program_state(build_module(spec)), LMConfig())
    registered = pb.VersionRegistered(
        program="p",
        version="2.0.0",
        spec=pb.ProgramSpec(module="Predict", signature="text -> topic"),
        artifact_digest=digest,
        artifact=artifact,
        status=pb.STAGING,
    )
    store = open_store(log)
    store.append("program-p", [new_event(registered)], 1)
    store.close()


def test_a_restored_gateway_serves_the_artifacts_a_full_replay_serves(new_log: NewLog) -> None:
    replayed_log, restored_log = new_log(), new_log()
    for log in (replayed_log, restored_log):
        _deployed_version(log)
        _unrouted_version(log)
    _snapshot(restored_log)
    replayed = ServerThread(lambda: start_gateway(GatewayConfig(log=replayed_log, canary_interval=0)))
    restored = ServerThread(lambda: start_gateway(GatewayConfig(log=restored_log, canary_interval=0)))
    try:
        assert replayed.running.replica.folded == 4 and restored.running.replica.folded == 0
        versions = restored.running.replica.state.programs["p"].versions
        routed, unrouted = versions["1.0.0"], versions["2.0.0"]
        assert routed.artifact_digest != unrouted.artifact_digest
        for gateway in (replayed, restored):
            # memory follows what serves: the routed version's bytes are kept (it serves through
            # an outage of a PostgreSQL log), the unrouted one's are not (kept before, by both)
            assert set(gateway.running.replica.artifacts) == {routed.artifact_digest}
        for version in (routed, unrouted):  # read from the log when not kept: the same bytes
            assert restored.running.replica.artifact(version) == replayed.running.replica.artifact(version)
        with GatewayClient(restored.address) as gw:
            assert gw.predict("web", {"text": "hello"}).version == "1.0.0"
    finally:
        replayed.stop()
        restored.stop()


def test_a_tampered_artifact_under_a_snapshot_is_refused_at_predict_not_at_start(new_log: NewLog) -> None:
    log = new_log()
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


def test_a_gateway_on_a_postgres_log_leaves_a_snapshot_the_next_one_starts_from(new_log: NewLog) -> None:
    """Gateways on a PostgreSQL log share its snapshots table: one that stops saves where it
    got to, and the next starts there. On a file log the snapshots stay the optimizer's."""
    log = new_log()
    _deployed_version(log)
    first = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
    assert first.running.replica.folded == 3
    first.stop()
    second = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
    try:
        expected = 0 if is_server_log(log) else 3
        assert second.running.replica.folded == expected
        assert second.running.replica.state.position == 3
        with GatewayClient(second.address) as gw:
            assert gw.predict("web", {"text": "hello"}).version == "1.0.0"
    finally:
        second.stop()
