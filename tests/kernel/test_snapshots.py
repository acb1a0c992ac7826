"""Snapshots: fold(all) == fold(rest, snapshot) for random event sequences; a snapshot of
another log is ignored; a gateway cold-starts from a snapshot and folds only the tail."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dspyops.artifacts import encode_artifact
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.fold import fold, state_hash
from dspyops.lm import LMConfig
from dspyops.programs.build import build_module, program_state
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.snapshots import decode_state, encode_state, take_snapshot
from dspyops.snapshots.sqlite import SQLiteSnapshotStore, snapshot_path
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from tests.kernel.test_state import payloads, stored
from tests.support.harness import ServerThread


@settings(max_examples=200, deadline=None)
@given(st.lists(payloads(), max_size=40), st.integers(0, 40))
def test_fold_of_a_snapshot_plus_the_rest_equals_the_fold_of_everything(messages: list, cut: int) -> None:
    events = stored(messages)
    whole = fold(events)
    snapshot = decode_state(encode_state(fold(events[:cut])))
    assert decode_state(encode_state(whole)) == whole
    resumed = fold(events[cut:], snapshot)
    assert resumed == whole and state_hash(resumed) == state_hash(whole)


def _registered_version(store_path: str) -> None:
    spec = ProgramSpec(module="Predict", signature="text -> label")
    digest, artifact = encode_artifact(spec, program_state(build_module(spec)), LMConfig())
    store = open_store(store_path)
    store.append(
        "program-p",
        [
            new_event(
                pb.VersionRegistered(
                    program="p",
                    version="1.0.0",
                    spec=pb.ProgramSpec(module="Predict", signature="text -> label"),
                    artifact_digest=digest,
                    artifact=artifact,
                    status=pb.PRODUCTION,
                )
            )
        ],
        0,
    )
    store.append("deployment-web", [new_event(pb.DeploymentCreated(deployment="web", program="p"))], 0)
    store.close()


def test_a_snapshot_of_another_log_is_ignored(tmp_path: Path) -> None:
    log = str(tmp_path / "log.db")
    _registered_version(log)
    store = open_store(log)
    snapshots = SQLiteSnapshotStore(snapshot_path(log))
    state = fold(store.read(0, 100))
    snapshots.save(state, b"\x00" * 32)  # not this log's hash at that position
    assert snapshots.latest(store) is None
    take_snapshot(store, snapshots)
    assert snapshots.latest(store) == state
    snapshots.close()
    store.close()


def test_a_gateway_cold_starts_from_the_snapshot_and_folds_only_the_tail(tmp_path: Path) -> None:
    log = str(tmp_path / "log.db")
    _registered_version(log)
    store = open_store(log)
    for batch in range(20):  # 20,000 route changes
        store.append(
            "deployment-web",
            [
                new_event(
                    pb.RoutesSet(
                        deployment="web",
                        routes=[pb.Route(version="1.0.0", weight=1.0)],
                        reason=f"change {batch}-{i}",
                    )
                )
                for i in range(1000)
            ],
            None,
        )
    snapshots = SQLiteSnapshotStore(snapshot_path(log))
    take_snapshot(store, snapshots)
    snapshots.close()
    store.append(
        "deployment-web",
        [
            new_event(
                pb.RoutesSet(
                    deployment="web",
                    routes=[pb.Route(version="1.0.0", weight=1.0)],
                    reason="after the snapshot",
                )
            )
            for _ in range(7)
        ],
        None,
    )
    head = store.head()
    expected = state_hash(fold(store.read(0, 100_000)))
    store.close()

    server = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
    try:
        replica = server.running.replica
        assert replica.state.position == head
        assert replica.folded == 7, f"folded {replica.folded} events instead of the 7 after the snapshot"
        assert state_hash(replica.state) == expected
        from dspyops.client import GatewayClient

        with GatewayClient(server.address) as gw:
            assert gw.predict("web", {"text": "hello"}).version == "1.0.0"
            assert gw.get_deployment_state("web").state_hash == expected
    finally:
        server.stop()
