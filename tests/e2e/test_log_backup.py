"""`dspyops log backup DEST`: a consistent copy of the live log (and its records, secret and
snapshots) while the optimizer appends, verified on the copy. A plain `cp` of the live log
misses whatever still sits in its WAL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import SQLiteEventStore
from dspyops.launch import ServiceProcess
from tests.support.logs import write_log


def backup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dspyops.cli", "log", "backup", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_backup_while_the_optimizer_appends_is_consistent_and_verifies(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    write_log(log)
    env = dict(os.environ)
    optimizer = ServiceProcess(
        "optimizer", ["optimizer", "--log", str(log), "--data-dir", str(tmp_path / "data")], tmp_path, env
    )
    gateway = ServiceProcess(
        "gateway", ["gateway", "--log", str(log), "--canary-interval", "0"], tmp_path, env
    )
    stop = threading.Event()
    appended: list[int] = []

    def keep_appending() -> None:
        with OptimizerClient(optimizer.address) as opt:
            while not stop.is_set():
                appended.append(
                    opt.set_routes("web", {"1.0.0": 1.0}, reason=f"change {len(appended)}").stream_version
                )

    writer = threading.Thread(target=keep_appending)
    try:
        with GatewayClient(gateway.address) as gw:
            prediction = gw.predict("web", {"text": "refund please"}, routing_key="user-7").prediction_id
        writer.start()
        while len(appended) < 20:
            assert writer.is_alive()
            time.sleep(0.01)
        plain_copy = tmp_path / "cp.db"
        shutil.copyfile(log, plain_copy)  # what `cp` gives while the services run
        done = backup(str(tmp_path / "backup" / "log.db"), "--log", str(log))
        during = len(appended)
        assert done.returncode == 0, done.stdout + done.stderr
        while len(appended) < during + 5:  # the optimizer kept appending through the backup
            assert writer.is_alive()
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join(30)
        gateway.stop()
        optimizer.stop()

    copy = tmp_path / "backup" / "log.db"
    assert "log ok" in done.stdout and "chain intact" in done.stdout
    copied = SQLiteEventStore(copy, read_only=True)
    live = SQLiteEventStore(log, read_only=True)
    try:
        events = copied.read(0, 100_000)
        assert copied.verify().ok
        assert 3 + 20 <= len(events) < live.head()  # a moment in the middle of the appends ...
        assert events == live.read(0, len(events))  # ... exactly as the live log has it
    finally:
        copied.close()
        live.close()
    assert not Path(f"{copy}-wal").exists()  # one self-contained file
    # A plain copy of the live file: the recent commits were in the WAL, not in the file.
    with sqlite3.connect(plain_copy) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        in_cp = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] if "events" in tables else 0
    conn.close()
    assert in_cp < len(events)

    # The files beside it came along: records (before the log: each refers to a copied
    # position), the routing-key secret they are keyed with (still private), and snapshots.
    with sqlite3.connect(f"{copy}.predictions") as conn:
        position = conn.execute(
            "SELECT log_position FROM predictions WHERE prediction_id = ?", (prediction,)
        ).fetchone()[0]
    conn.close()
    assert position <= len(events)
    secret = Path(f"{copy}.secret")
    assert secret.read_bytes() == Path(f"{log}.secret").read_bytes()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert Path(f"{copy}.snapshots").exists()

    # The copy restores: a gateway on it serves, and explains the copied prediction with --key.
    restored = ServiceProcess(
        "restored", ["gateway", "--log", str(copy), "--canary-interval", "0"], tmp_path, env
    )
    try:
        with GatewayClient(restored.address) as gw:
            assert gw.explain_prediction(prediction, "user-7").routing_key_matches
    finally:
        restored.stop()


def test_backup_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    log, dest = tmp_path / "log.db", tmp_path / "copy.db"
    write_log(log)
    dest.write_bytes(b"something precious")
    done = backup(str(dest), "--log", str(log))
    assert done.returncode != 0 and "--force" in done.stderr and str(dest) in done.stderr
    assert dest.read_bytes() == b"something precious"
    done = backup(str(dest), "--log", str(log), "--force", "--json")
    assert done.returncode == 0, done.stderr
    assert '"ok": true' in done.stdout and '"checked": 3' in done.stdout
    done = backup(str(tmp_path / "x.db"), "--log", str(tmp_path / "missing.db"))
    assert done.returncode != 0 and "does not exist" in done.stderr
