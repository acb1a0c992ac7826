"""`dspyops mlflow sync` against a real optimizer with real jobs (offline LM) and a real
SQLite MLflow store in tmp_path, read back with MlflowClient: a run per job, a registered
model version per version with its lineage, aliases and statuses that move with the log,
a second sync that creates nothing, and --follow picking up a job that ends later."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dspyops.cli.main import main
from dspyops.client import OptimizerClient
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient

ROWS = ticket_rows()
SIG = "text -> label"


@dataclass
class World:
    tmp: Path
    optimizer: ServerThread
    uri: str
    jobs: list[str]

    def sync(self, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
        capsys.readouterr()
        code = main(
            [
                "--optimizer",
                self.optimizer.address,
                "mlflow",
                "sync",
                "--tracking-uri",
                self.uri,
                "--json",
                *extra,
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        return dict(json.loads(out.splitlines()[-1]))

    def mlflow(self) -> Any:
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def run_of(self, job_id: str) -> Any:
        (exp,) = [e for e in self.mlflow().search_experiments() if e.name == "dspyops"]
        runs = self.mlflow().search_runs([exp.experiment_id], f"tags.`dspyops.job_id` = '{job_id}'")
        assert len(runs) == 1
        return runs[0]


def run_job(opt: OptimizerClient, optimizer: str, params: dict[str, Any]) -> str:
    events = list(
        opt.start_optimization(
            "tickets",
            SIG,
            trainset=ROWS[:20],
            valset=ROWS[20:30],
            optimizer=optimizer,
            params=params,
            min_score=0.0,
        )
    )
    assert events[-1].WhichOneof("kind") == "completed", events[-1]
    return events[0].job_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("mlflow-sync")
    server = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data"))
    )
    with OptimizerClient(server.address) as opt:
        jobs = [
            run_job(opt, "LabeledFewShot", {"k": 4}),
            run_job(opt, "BootstrapFewShot", {"max_bootstrapped_demos": 2, "max_labeled_demos": 4}),
        ]
    yield World(tmp, server, f"sqlite:///{tmp / 'mlflow.db'}", jobs)
    server.stop()


@pytest.fixture(scope="module")
def synced(world: World) -> World:
    assert main(["--optimizer", world.optimizer.address, "mlflow", "sync", "--tracking-uri", world.uri]) == 0
    return world


def test_each_job_is_a_run_with_params_metrics_by_step_tags_and_the_state(synced: World) -> None:
    with OptimizerClient(synced.optimizer.address) as opt:
        log = opt.read_log(0, 10_000, stream_prefix=f"job-{synced.jobs[1]}").events
        version = opt.get_job(synced.jobs[1]).version
        state = opt.export_version("tickets", version).state_json
    run = synced.run_of(synced.jobs[1])
    assert run.info.status == "FINISHED"
    assert run.data.params["optimizer"] == "BootstrapFewShot"
    assert run.data.params["max_bootstrapped_demos"] == "2"
    assert len(run.data.params["trainset_digest"]) == 64
    trials = [e.payload.trial_completed for e in log if e.payload.WhichOneof("kind") == "trial_completed"]
    history = synced.mlflow().get_metric_history(run.info.run_id, "trial_score")
    assert sorted((m.step, m.value) for m in history) == sorted((t.trial, t.score) for t in trials)
    assert trials, "BootstrapFewShot logged no trial"
    completed = log[-1].payload.job_completed
    assert run.data.metrics["final_score"] == completed.final_score
    assert run.data.metrics["baseline_score"] == completed.baseline_score
    assert run.data.metrics["lm_calls"] == completed.usage.lm_calls > 0
    assert run.data.metrics["input_tokens"] == completed.usage.input_tokens
    assert run.data.tags["dspyops.gate"] == "passed"
    assert run.data.tags["dspyops.first_position"] == str(log[0].position)
    assert run.data.tags["dspyops.last_position"] == str(log[-1].position)
    assert run.data.tags["dspyops.version"] == version
    local = synced.mlflow().download_artifacts(run.info.run_id, "dspy/state.json", str(synced.tmp))
    assert Path(local).read_bytes() == state
    assert str(synced.tmp) in run.info.artifact_uri  # beside the store, not ./mlruns


def test_each_version_is_a_model_version_with_its_lineage(synced: World) -> None:
    with OptimizerClient(synced.optimizer.address) as opt:
        versions = {v.version: v for v in opt.list_versions("tickets").versions}
    found = synced.mlflow().search_model_versions("name='tickets'")
    assert sorted(mv.tags["dspyops.version"] for mv in found) == sorted(versions)
    for mv in found:
        ours = versions[mv.tags["dspyops.version"]]
        assert mv.tags["dspyops.job_id"] == ours.lineage.job_id
        assert mv.tags["dspyops.trainset_digest"] == ours.lineage.trainset_digest
        assert mv.tags["dspyops.valset_digest"] == ours.lineage.valset_digest
        assert mv.tags["dspyops.status"] == "development"
        assert int(mv.tags["dspyops.position"]) > 0
        assert mv.run_id == synced.run_of(ours.lineage.job_id).info.run_id


def test_aliases_and_statuses_move_when_the_log_moves_them(
    synced: World, capsys: pytest.CaptureFixture[str]
) -> None:
    with OptimizerClient(synced.optimizer.address) as opt:
        first, second = (opt.get_job(job).version for job in synced.jobs)
        opt.set_alias("tickets", "champion", first)
        opt.set_version_status("tickets", first, "production")
    synced.sync(capsys)
    client = synced.mlflow()
    assert client.get_model_version_by_alias("tickets", "champion").tags["dspyops.version"] == first
    by_ours = {mv.tags["dspyops.version"]: mv for mv in client.search_model_versions("name='tickets'")}
    assert by_ours[first].tags["dspyops.status"] == "production"
    with OptimizerClient(synced.optimizer.address) as opt:
        opt.set_alias("tickets", "champion", second)
        opt.set_version_status("tickets", second, "production")  # the first one is deprecated
    synced.sync(capsys)
    assert client.get_model_version_by_alias("tickets", "champion").tags["dspyops.version"] == second
    by_ours = {mv.tags["dspyops.version"]: mv for mv in client.search_model_versions("name='tickets'")}
    assert by_ours[first].tags["dspyops.status"] == "deprecated"
    assert by_ours[second].tags["dspyops.status"] == "production"
    assert by_ours[first].aliases == []
    # an alias MLflow holds that the log does not know is removed
    client.set_registered_model_alias("tickets", "stray", by_ours[first].version)
    synced.sync(capsys)
    assert set(client.get_registered_model("tickets").aliases) == {"champion"}


def test_syncing_again_creates_nothing_new(synced: World, capsys: pytest.CaptureFixture[str]) -> None:
    client = synced.mlflow()
    before = (
        len(client.search_runs([synced.run_of(synced.jobs[0]).info.experiment_id])),
        len(client.search_model_versions("name='tickets'")),
    )
    written = synced.sync(capsys)
    assert {
        key: written[key]
        for key in ("runs", "metrics", "params", "artifacts", "versions", "aliases", "tags", "ended")
    } == dict.fromkeys(("runs", "metrics", "params", "artifacts", "versions", "aliases", "tags", "ended"), 0)
    after = (
        len(client.search_runs([synced.run_of(synced.jobs[0]).info.experiment_id])),
        len(client.search_model_versions("name='tickets'")),
    )
    assert after == before
    exp = client.get_experiment(synced.run_of(synced.jobs[0]).info.experiment_id)
    with OptimizerClient(synced.optimizer.address) as opt:
        assert int(exp.tags["dspyops.synced_position"]) == opt.read_log(0, 1).head
    # without the cursor (correctness does not depend on it): still nothing new
    client.delete_experiment_tag(exp.experiment_id, "dspyops.synced_position")
    assert synced.sync(capsys)["runs"] == 0


def test_follow_mirrors_a_job_that_ends_after_it_started(world: World) -> None:
    tmp = world.tmp / "follow"
    home = tmp / "home"
    home.mkdir(parents=True)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dspyops.cli",
            "--optimizer",
            world.optimizer.address,
            "mlflow",
            "sync",
            "--tracking-uri",
            uri,
            "--follow",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp,
    )
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)

        def runs() -> int:
            found = client.get_experiment_by_name("dspyops") if (tmp / "mlflow.db").exists() else None
            return len(client.search_runs([found.experiment_id])) if found else -1

        assert wait_until(lambda: runs() == len(world.jobs), 60), process.poll()
        with OptimizerClient(world.optimizer.address) as opt:
            job = run_job(opt, "LabeledFewShot", {"k": 2})
        exp = client.get_experiment_by_name("dspyops")
        assert exp is not None

        def mirrored() -> bool:
            found = client.search_runs([exp.experiment_id], f"tags.`dspyops.job_id` = '{job}'")
            return (
                bool(found) and found[0].info.status == "FINISHED" and "final_score" in found[0].data.metrics
            )

        assert wait_until(mirrored, 60)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert list(home.iterdir()) == []  # nothing written to $HOME (no ~/.mlflow)
    assert not (tmp / "mlruns").exists()
