"""Both services verify the hash chain when they start (after the newest snapshot that still
matches the log) and refuse a broken chain, naming the first broken position, unless told
--allow-broken-log; a remote gateway checks every link it receives; keyed logs need their
key. `dspyops log verify --log` reports the link versions."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import GENESIS, SQLiteEventStore, event_hash, link_v2, open_store
from dspyops.eventlog.hashchain import micros
from dspyops.launch import ServiceProcess
from dspyops.logstart import StartRefused
from dspyops.snapshots import take_snapshot
from dspyops.snapshots.sqlite import SQLiteSnapshotStore, snapshot_path
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, health_of, serve_until_exit, wait_until
from tests.support.logs import tamper, write_key, write_log

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.parametrize("service", ["optimizer", "gateway"])
def test_a_service_refuses_to_start_on_a_broken_chain_naming_the_position(
    tmp_path: Path, service: str
) -> None:
    log = tmp_path / "log.db"
    write_log(log, extra=3)
    tamper(log, 4, "actor", "mallory")  # chain v1 did not cover the actor: this went unnoticed
    args = [service, "--log", str(log)]
    args += ["--data-dir", str(tmp_path / "data")] if service == "optimizer" else ["--canary-interval", "0"]
    status, stderr = serve_until_exit(args, tmp_path)
    assert status is not None, f"the {service} started on a broken chain"
    assert status != 0
    assert "broken at position 4" in stderr and "--allow-broken-log" in stderr
    assert "Traceback" not in stderr

    started = ServiceProcess(service, [*args, "--allow-broken-log"], tmp_path, dict(os.environ))
    try:
        assert health_of(started.address) == SERVING
    finally:
        started.stop()
    logged = (tmp_path / f"{service}.log").read_text()
    assert "log_chain_broken" in logged and '"first_broken_position": 4' in logged


def test_verification_at_start_begins_after_the_newest_matching_snapshot(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    write_log(log, extra=20)
    store = open_store(str(log))
    snapshots = SQLiteSnapshotStore(snapshot_path(str(log)))
    snapshot = take_snapshot(store, snapshots).position  # 23
    snapshots.close()
    store.close()
    write_log(log, extra=3)  # and a tail after it (positions 24..26)
    config = OptimizerConfig(log=str(log), data_dir=tmp_path / "data")

    original = _recorded_at(log, snapshot + 2)
    tamper(log, snapshot + 2, "recorded_at", 0)  # in the tail: caught at start
    with pytest.raises(StartRefused, match=f"broken at position {snapshot + 2}"):
        ServerThread(lambda: start_optimizer(config))
    tamper(log, snapshot + 2, "recorded_at", original)
    optimizer = ServerThread(lambda: start_optimizer(config))
    optimizer.stop()

    # An edit before the snapshot, where the stored links still match the snapshot's hash,
    # is not walked at start (that is what makes a large log start fast) ...
    tamper(log, 5, "actor", "mallory")
    optimizer = ServerThread(lambda: start_optimizer(config))
    try:
        with OptimizerClient(optimizer.address) as opt:
            verified = opt.verify_log()  # ... but the full walk finds it
            assert not verified.ok and verified.first_broken_position == 5
    finally:
        optimizer.stop()
    # A snapshot that no longer matches the log is not trusted: the walk starts at 1.
    with sqlite3.connect(snapshot_path(str(log))) as conn:
        conn.execute("UPDATE snapshots SET hash = ?", (bytes(32),))
    conn.close()
    with pytest.raises(StartRefused, match="broken at position 5"):
        ServerThread(lambda: start_optimizer(config))


def test_a_gateway_checks_the_links_after_its_snapshot_as_its_replay_reads_them(tmp_path: Path) -> None:
    """The gateway walks nothing before it replays: the replay checks each link it folds, so
    what a walk at start would have refused is refused all the same, naming the position,
    even a row the replay cannot read at all."""
    log = tmp_path / "log.db"
    write_log(log, extra=20)
    store = open_store(str(log))
    snapshots = SQLiteSnapshotStore(snapshot_path(str(log)))
    snapshot = take_snapshot(store, snapshots).position
    snapshots.close()
    store.close()
    write_log(log, extra=3)
    config = GatewayConfig(log=str(log), canary_interval=0)
    gateway = ServerThread(lambda: start_gateway(config))
    try:
        assert gateway.running.replica.folded == 3  # from the snapshot on
    finally:
        gateway.stop()

    original = _recorded_at(log, snapshot + 2)
    tamper(log, snapshot + 2, "recorded_at", original + 1)
    with pytest.raises(StartRefused, match=f"broken at position {snapshot + 2}: .*hash mismatch"):
        ServerThread(lambda: start_gateway(config))
    # a timestamp rewritten as text: the replay cannot even build the event; the walk names it
    tamper(log, snapshot + 2, "recorded_at", "yesterday")
    unreadable = f"broken at position {snapshot + 2}: .*recorded_at is not an integer"
    with pytest.raises(StartRefused, match=unreadable):
        ServerThread(lambda: start_gateway(config))
    tamper(log, snapshot + 2, "recorded_at", original)
    ServerThread(lambda: start_gateway(config)).stop()


def _recorded_at(log: Path, position: int) -> int:
    with sqlite3.connect(log) as conn:
        value = conn.execute("SELECT recorded_at FROM events WHERE position = ?", (position,)).fetchone()[0]
    conn.close()
    return int(value)


def test_a_remote_gateway_checks_every_link_it_receives(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    head = write_log(log, extra=3)
    tamper(log, 4, "stream", "deployment-forged")  # version 1 of a new stream: v1 density held
    optimizer = ServerThread(
        lambda: start_optimizer(
            OptimizerConfig(log=str(log), data_dir=tmp_path / "data", allow_broken_log=True)
        )
    )

    def remote(**extra: object) -> ServerThread:
        config = GatewayConfig(
            optimizer=optimizer.address,
            predictions=str(tmp_path / f"p{len(extra)}.db"),
            canary_interval=0,
            **extra,
        )
        return ServerThread(lambda: start_gateway(config))

    strict = remote()
    lenient = remote(allow_broken_log=True)
    try:
        assert wait_until(lambda: health_of(strict.address) == NOT_SERVING, timeout=30)
        assert strict.running.replica.state.position == 3  # nothing from the broken link on
        assert "position 4" in str(strict.running.replica.failure)
        assert wait_until(lambda: lenient.running.replica.state.position == head, timeout=30)
        assert health_of(lenient.address) == SERVING
    finally:
        strict.stop()
        lenient.stop()
        optimizer.stop()


def test_a_keyed_log_needs_its_key_and_its_links_cannot_be_recomputed_without_it(tmp_path: Path) -> None:
    log, key_file = tmp_path / "log.db", tmp_path / "chain.key"
    key = write_key(key_file)
    write_log(log, extra=2, chain_key=key)
    data = tmp_path / "data"
    keyed = OptimizerConfig(log=str(log), data_dir=data, chain_key_file=str(key_file))
    optimizer = ServerThread(lambda: start_optimizer(keyed))
    try:
        with OptimizerClient(optimizer.address) as opt:
            opt.set_routes("web", {"1.0.0": 1.0})
            verified = opt.verify_log()
            assert verified.ok and verified.keyed_links == verified.v2_links == verified.checked == 6
        gateway = ServerThread(
            lambda: start_gateway(
                GatewayConfig(log=str(log), chain_key_file=str(key_file), canary_interval=0)
            )
        )
        try:
            with GatewayClient(gateway.address) as gw:
                assert gw.get_deployment_state("web").log_position == 6
        finally:
            gateway.stop()
        # a remote gateway without the key cannot check keyed links: it does not serve them
        blind = ServerThread(
            lambda: start_gateway(
                GatewayConfig(
                    optimizer=optimizer.address, predictions=str(tmp_path / "p.db"), canary_interval=0
                )
            )
        )
        try:
            # it connects, receives the first keyed link, cannot check it and stops there
            assert wait_until(lambda: "chain key" in str(blind.running.replica.failure), timeout=30)
            assert health_of(blind.address) == NOT_SERVING
        finally:
            blind.stop()
    finally:
        optimizer.stop()

    # without the key neither service starts: it could neither check nor append a keyed link
    with pytest.raises(StartRefused, match="--chain-key-file"):
        ServerThread(lambda: start_optimizer(OptimizerConfig(log=str(log), data_dir=data)))
    with pytest.raises(StartRefused, match="--chain-key-file"):
        ServerThread(lambda: start_gateway(GatewayConfig(log=str(log), canary_interval=0)))

    # Someone who can write the file but lacks the key edits an event and recomputes its link
    # the only way they can, unkeyed: refused at start, naming the position.
    store = SQLiteEventStore(log, read_only=True)
    prev, target = store.read()[3:5]
    store.close()
    forged = link_v2(
        prev.hash, 5, target.stream, target.version, target.event_id, target.type,
        micros(target.recorded_at), "mallory", target.payload,
    )  # fmt: skip
    tamper(log, 5, "actor", "mallory")
    tamper(log, 5, "hash", forged)
    tamper(log, 5, "chain", 2)
    with pytest.raises(StartRefused, match=r"broken at position 5.*downgrade"):
        ServerThread(lambda: start_optimizer(keyed))


def test_a_chain_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "chain.key"
    write_key(key_file)
    os.chmod(key_file, 0o644)
    config = OptimizerConfig(
        log=str(tmp_path / "log.db"), data_dir=tmp_path / "data", chain_key_file=str(key_file)
    )
    with pytest.raises(StartRefused, match="chmod 600"):
        ServerThread(lambda: start_optimizer(config))
    key_file.write_bytes(b"short\n")
    os.chmod(key_file, 0o600)
    with pytest.raises(StartRefused, match="at least 16"):
        ServerThread(lambda: start_optimizer(config))
    assert not (tmp_path / "log.db").exists()  # refused before anything was created


def test_log_verify_reports_link_versions(tmp_path: Path) -> None:
    log, key_file = tmp_path / "log.db", tmp_path / "chain.key"
    write_log(log, extra=1)
    with sqlite3.connect(log) as conn:  # the first three as a log from before chain v2 holds them
        prev = GENESIS
        for position, type_, payload in conn.execute(
            "SELECT position, type, payload FROM events WHERE position <= 3 ORDER BY position"
        ).fetchall():
            prev = event_hash(prev, position, type_, payload)
            conn.execute("UPDATE events SET hash = ?, chain = 1 WHERE position = ?", (prev, position))
        # position 4 was linked to the old v2 hash of 3: relink it as a v2 link after v1 ones
        row = conn.execute("SELECT stream, version, event_id, type, recorded_at, actor, payload FROM events "
                           "WHERE position = 4").fetchone()  # fmt: skip
        conn.execute("UPDATE events SET hash = ? WHERE position = 4", (link_v2(prev, 4, *row),))
    conn.close()
    write_log(log, extra=3, chain_key=write_key(key_file))  # then keyed ones

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dspyops.cli", "log", "verify", "--log", str(log), *extra],
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = verify("--json", "--chain-key-file", str(key_file))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["checked"] == 7
    assert (report["v1_links"], report["v2_links"], report["keyed_links"]) == (3, 4, 3)
    done = verify("--chain-key-file", str(key_file))
    assert done.returncode == 0 and "3 v1 links, 4 v2 links, 3 of them keyed" in done.stdout
    done = verify()  # without the key the keyed links do not verify
    assert done.returncode == 1 and "position 5" in done.stdout and "chain key" in done.stdout
