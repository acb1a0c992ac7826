"""Both real servers on a PostgreSQL log: the optimizer registers and deploys, a gateway
tailing the same log (woken by LISTEN/NOTIFY) serves the predictions, the CLI verifies the
log by its URL, and a restarted optimizer folds the same state from the server. With
nothing but the URL, two gateways share the records, the routing secret and the snapshots
in the log's database."""

from __future__ import annotations

import json
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


def _routed(gw: GatewayClient, version: str = "1.0.0") -> bool:
    try:
        routes = gw.get_deployment_state("web").routes
    except Exception:
        return False
    return bool(routes) and routes[0].version == version


def _listening(log_file: Path) -> list[dict[str, object]]:
    """The gateway_listening lines a service process logged (JSON, one a line)."""
    found = []
    for line in log_file.read_text().splitlines():
        if '"gateway_listening"' in line:
            found.append(json.loads(line[line.index("{") :]))
    return found


def _tables(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            for table in ("snapshots", "artifacts", "predictions", "outcomes", "routing_secret")
        }


def test_two_gateways_on_one_postgres_log_with_no_local_paths(tmp_path: Path, postgres_url: str) -> None:
    """Nothing but the URL: no --data-dir, no --predictions, and a working directory that
    stays empty. A prediction served by gateway 1 takes its outcome on gateway 2, both count
    it in the experiment's statistics, and gateway 2 restarted starts from the snapshot it
    left in the log's database when it stopped."""
    env = dict(os.environ, DSPYOPS_LOG_LEVEL="info")
    run = tmp_path / "cwd"  # every service's working directory: nothing may appear here
    run.mkdir()
    optimizer = ServiceProcess("optimizer", ["optimizer", "--log", postgres_url], tmp_path, env, cwd=run)
    gateway_args = ["gateway", "--log", postgres_url, "--canary-interval", "0"]
    gateways = [ServiceProcess(f"gateway-{i}", gateway_args, tmp_path, env, cwd=run) for i in (1, 2)]
    try:
        with OptimizerClient(optimizer.address) as opt:
            versions = []
            for k in (2, 4):
                events = list(
                    opt.start_optimization(
                        "tickets",
                        "text -> label",
                        trainset=ROWS[:20],
                        optimizer="LabeledFewShot",
                        params={"k": k},
                    )
                )
                assert events[-1].WhichOneof("kind") == "completed", events[-1]
                versions.append(events[-1].completed.version)
            opt.create_deployment("web", "tickets")
            opt.set_routes("web", {versions[0]: 1.0}, reason="first")
        with GatewayClient(gateways[0].address) as gw1, GatewayClient(gateways[1].address) as gw2:
            assert wait_until(lambda: _routed(gw1, versions[0]) and _routed(gw2, versions[0]), timeout=60)
            gw1.start_experiment("web", versions[0], [versions[1]], min_samples_per_arm=10)
            assert wait_until(lambda: gw2.get_deployment_state("web").HasField("experiment"), timeout=60)
            answer = gw1.predict("web", {"text": ROWS[0]["text"]}, routing_key="user-1")
            assert gw2.record_outcome(answer.prediction_id, 1.0).version == answer.version
            for gw in (gw1, gw2):  # the statistics of either count gateway 1's prediction and its outcome
                arms = {arm.version: arm for arm in gw.get_experiment_results("web").arms}
                assert (arms[answer.version].assigned, arms[answer.version].n) == (1, 1)
                assert arms[answer.version].mean == 1.0
            # an explain on the other gateway checks the routing key against gateway 1's record
            assert gw2.explain_prediction(answer.prediction_id, routing_key="user-1").routing_key_matches
            head = gw1.list_deployment_states().log_position
        assert wait_until(lambda: _folded_to(gateways[1], head), timeout=60)
        assert gateways[1].stop() == 0  # leaves a snapshot at its position
        tables = _tables(postgres_url)
        assert tables["snapshots"] >= 1 and tables["artifacts"] >= 2  # the two versions' bytes
        assert (tables["predictions"], tables["outcomes"], tables["routing_secret"]) == (1, 1, 1)

        again = ServiceProcess("gateway-2b", gateway_args, tmp_path, env, cwd=run)
        gateways[1] = again
        started = _listening(tmp_path / "gateway-2b.log")[-1]
        assert started["restored_from"] == head and started["folded"] == 0, started
        assert "PostgresPredictionStore" in str(started["records"])
        with GatewayClient(again.address) as gw2:
            arms = {arm.version: arm for arm in gw2.get_experiment_results("web").arms}
            assert (arms[answer.version].assigned, arms[answer.version].n) == (1, 1)
            assert gw2.predict("web", {"text": ROWS[1]["text"]}, routing_key="user-2").version in versions
    finally:
        for process in (*gateways, optimizer):
            assert process.stop() == 0
    assert sorted(p.name for p in run.iterdir()) == []  # nothing local: not a file, not a directory


def _folded_to(gateway: ServiceProcess, position: int) -> bool:
    with GatewayClient(gateway.address) as gw:
        return gw.list_deployment_states().log_position >= position
