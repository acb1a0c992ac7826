"""`dspyops jobs start|watch|cancel|get|list` (StartOptimization, WatchJob, CancelJob, GetJob,
ListJobs) against real servers. `jobs start` (alias `optimize`) sends the whole file: the
server splits it with dspyops.datasets.split, so the version's valset is that split's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dspyops.datasets import dataset_digest, load_dataset, split
from tests.support.cli_servers import SIG, Servers, cli, start_servers
from tests.support.harness import ticket_rows

__all__ = ["cli"]  # the fixture
ROWS = [{"text": f"refund for order {i}", "label": "refund"} for i in range(10)]
ROWS += [{"text": f"password reset {i}", "label": "account"} for i in range(10)]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("cli-jobs")
    (tmp / "datasets").mkdir()
    (tmp / "datasets" / "tickets.jsonl").write_text("\n".join(json.dumps(r) for r in ticket_rows()[:30]))
    started = start_servers(tmp, versions=1, datasets_dir=tmp / "datasets")
    yield started
    started.gateway.stop()
    started.optimizer.stop()


@pytest.fixture(scope="module")
def rows_file(servers: Servers) -> Path:
    path = servers.tmp / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS))
    return path


def _start(cli: Servers, *args: str) -> list[dict]:
    return cli.json(
        "jobs", "start", "labeled", "--signature", SIG, "-O", "LabeledFewShot", "-p", "k=2", *args
    )


def test_the_server_splits_the_file_with_the_seed_given(cli: Servers, rows_file: Path) -> None:
    events = _start(cli, "--dataset", str(rows_file), "--val-fraction", "0.25", "--seed", "3")
    train, val = split(load_dataset(rows_file), 0.25, 3)  # what the server does with the rows
    assert events[0]["accepted"]["trainset_size"] == len(train) == 15
    assert events[0]["accepted"]["valset_size"] == len(val) == 5
    version = events[-1]["completed"]["version"]
    with cli.opt() as opt:
        lineage = opt.get_version("labeled", version).lineage
    assert lineage.valset_digest == dataset_digest(val)
    assert lineage.trainset_digest == dataset_digest(train)


def test_no_split_and_a_server_side_dataset(cli: Servers, rows_file: Path) -> None:
    events = _start(cli, "--dataset", str(rows_file), "--val-fraction", "0")
    assert events[0]["accepted"]["trainset_size"] == 20 and events[0]["accepted"].get("valset_size", 0) == 0
    events = _start(cli, "--dataset-ref", "tickets.jsonl", "--input-key", "text")
    assert events[0]["accepted"]["trainset_size"] == 21 and events[0]["accepted"]["valset_size"] == 9
    assert "completed" in events[-1]
    with pytest.raises(SystemExit, match="give --trainset FILE or --trainset-ref FILE"):
        cli.run("jobs", "start", "labeled", "--signature", SIG)
    with pytest.raises(SystemExit, match="no bundled dataset 'nope'"):
        cli.run("optimize", "labeled", "--signature", SIG, "--dataset", "nope")


def test_get_list_and_watch_a_job(cli: Servers, rows_file: Path) -> None:
    events = _start(cli, "--dataset", str(rows_file))
    job_id = events[0]["job_id"]
    code, out = cli.run("jobs", "get", job_id)
    assert code == 0 and f"job {job_id}: LabeledFewShot on labeled, succeeded" in out and "registered" in out
    (job,) = cli.json("jobs", "get", job_id)
    assert job["state"] == "SUCCEEDED" and job["version"] == events[-1]["completed"]["version"]
    listed = [j["job_id"] for j in cli.json("jobs", "list", "--program", "labeled")]
    assert job_id in listed and listed == [j["job_id"] for j in cli.json("jobs", "--program", "labeled")]
    code, out = cli.run("jobs")  # the default: list
    assert code == 0 and job_id in out
    watched = cli.json("jobs", "watch", job_id, "--after", "2")
    assert [int(e["sequence"]) for e in watched] == [int(e["sequence"]) for e in events][2:]
    assert watched == cli.json("watch", job_id, "--after", "2")  # the shortcut
    # resumed by the log's position (the same on every replica): only later logged events
    versions = [int(e.get("stream_version", 0)) for e in events]
    resumed = cli.json("jobs", "watch", job_id, "--after-version", "2")
    assert [int(e["stream_version"]) for e in resumed] == [v for v in versions if v > 2] and resumed
    code, out = cli.run("jobs", "get", "no-such-job")
    assert code == 1 and "NOT_FOUND" in out


def test_cancel_a_running_job(cli: Servers) -> None:
    with cli.opt() as opt:
        stream = opt.start_optimization(
            "slow",
            SIG,
            trainset=ticket_rows()[:20],
            valset=ticket_rows()[20:30],
            optimizer="GEPA",
            params={"max_metric_calls": 100000},
        )
        job_id = next(stream).job_id
        code, out = cli.run("jobs", "cancel", job_id, "--reason", "enough")
        assert code == 0 and f"cancel requested for job {job_id}" in out
        last = list(stream)[-1]
    assert last.WhichOneof("kind") == "cancelled" and "enough" in last.cancelled.reason
    assert "cancelled" in cli.json("jobs", "watch", job_id)[-1]
    code, out = cli.run("cancel", job_id)  # it has ended: nothing to cancel
    assert code == 1 and "FAILED_PRECONDITION" in out


def test_a_file_in_the_working_directory_wins_over_a_shipped_name(
    cli: Servers, rows_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(rows_file.parent)
    (rows_file.parent / "support_tickets").write_text(rows_file.read_text())  # no .jsonl suffix
    events = _start(cli, "--dataset", "support_tickets", "--val-fraction", "0")
    assert events[0]["accepted"]["trainset_size"] == 20  # the file's 20 rows, not the shipped 100


def test_a_pipeline_spec_from_a_file(cli: Servers, rows_file: Path) -> None:
    spec = {
        "module": "Pipeline",
        "pipeline": {
            "stages": [
                {
                    "name": "analyze",
                    "kind": "ChainOfThought",
                    "signature": "text -> topic",
                    "inputs": {"text": "input.text"},
                },
                {
                    "name": "answer",
                    "kind": "Predict",
                    "signature": "text, topic -> label",
                    "inputs": {"text": "input.text", "topic": "analyze.topic"},
                },
            ],
            "outputs": {"label": "answer.label"},
        },
    }
    spec_file = cli.tmp / "pipeline.json"
    spec_file.write_text(json.dumps(spec))
    events = cli.json(
        "jobs",
        "start",
        "piped",
        "--spec",
        str(spec_file),
        "--dataset",
        str(rows_file),
        "-O",
        "LabeledFewShot",
        "-p",
        "k=2",
    )
    version = events[-1]["completed"]["version"]
    with cli.opt() as opt:
        assert opt.get_version("piped", version).spec.pipeline.stages[1].name == "answer"
    with pytest.raises(SystemExit, match="give --signature TEXT or --spec FILE"):
        cli.run(
            "jobs",
            "start",
            "piped",
            "--spec",
            str(spec_file),
            "--signature",
            SIG,
            "--dataset",
            str(rows_file),
        )
    bad = cli.tmp / "bad.json"
    bad.write_text('{"module": "Pipeline", "pipline": {}}')
    with pytest.raises(SystemExit, match=r"--spec .*bad\.json: "):
        cli.run("jobs", "start", "piped", "--spec", str(bad), "--dataset", str(rows_file))
