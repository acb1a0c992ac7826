"""Both real servers on a PostgreSQL log: the optimizer registers and deploys, a gateway
tailing the same log (woken by LISTEN/NOTIFY) serves the predictions, the CLI verifies the
log by its URL, and a restarted optimizer folds the same state from the server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import open_store
from dspyops.launch import ServiceProcess
from tests.support.harness import serve_until_exit, ticket_rows, wait_until

ROWS = ticket_rows()


def test_register_deploy_predict_on_a_postgres_log(tmp_path: Path, postgres_url: str) -> None:
    env = dict(os.environ)
    optimizer_args = ["optimizer", "--log", postgres_url, "--data-dir", str(tmp_path / "data")]
    optimizer = ServiceProcess("optimizer", optimizer_args, tmp_path, env)
    gateway_args = [
        "gateway", "--log", postgres_url, "--predictions", str(tmp_path / "gw" / "records.db"),
        "--canary-interval", "0",
    ]  # fmt: skip
    (tmp_path / "gw").mkdir()
    gateway = ServiceProcess("gateway", gateway_args, tmp_path, env)
    try:
        with OptimizerClient(optimizer.address) as opt, GatewayClient(gateway.address) as gw:
            events = list(
                opt.start_optimization(
                    "tickets",
                    "text -> label",
                    trainset=ROWS[:20],
                    optimizer="LabeledFewShot",
                    params={"k": 4},
                )
            )
            assert events[-1].WhichOneof("kind") == "completed"
            opt.create_deployment("web", "tickets")
            opt.set_routes("web", {"1.0.0": 1.0}, reason="first")
            # the gateway started before any of it: it learns the route by tailing the log
            assert wait_until(lambda: _routed(gw), timeout=60)
            answer = gw.predict("web", {"text": ROWS[0]["text"]}, routing_key="user-1")
            assert answer.version == "1.0.0" and answer.outputs["label"]
        assert gateway.stop() == 0
    finally:
        assert optimizer.stop() == 0

    store = open_store(postgres_url)
    try:
        verified = store.verify()
        head = store.head()
        assert verified.ok and verified.checked == head > 0
        types = [e.type for e in store.read(limit=10_000)]
        assert "dspyops.v1.VersionRegistered" in types and "dspyops.v1.RoutesSet" in types
    finally:
        store.close()
    cli = subprocess.run(
        [sys.executable, "-m", "dspyops.cli", "log", "verify", "--log", postgres_url],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert f"log ok: {head} events" in cli.stdout, cli.stdout

    # a restart on the same server: the registry is all there (folded from PostgreSQL)
    again = ServiceProcess("optimizer-2", optimizer_args, tmp_path, env)
    try:
        with OptimizerClient(again.address) as opt:
            assert [v.version for v in opt.list_versions("tickets").versions] == ["1.0.0"]
            assert opt.get_deployment("web").routes[0].version == "1.0.0"
    finally:
        assert again.stop() == 0

    # the table gone, the optimizer's artifacts still there: no silent fresh start ...
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TABLE events")
    status, stderr = serve_until_exit(optimizer_args, tmp_path)
    assert status is not None and status != 0
    assert "does not exist" in stderr and "--create" in stderr and "Traceback" not in stderr
    assert postgres_url.rsplit("/", 1)[1] in stderr  # the log named by its URL (without a password)
    # ... unless told to
    fresh = ServiceProcess("optimizer-3", [*optimizer_args, "--create"], tmp_path, env)
    try:
        with OptimizerClient(fresh.address) as opt:
            assert not opt.list_programs().programs
    finally:
        assert fresh.stop() == 0


def _routed(gw: GatewayClient) -> bool:
    try:
        routes = gw.get_deployment_state("web").routes
    except Exception:
        return False
    return bool(routes) and routes[0].version == "1.0.0"
