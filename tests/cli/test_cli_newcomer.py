"""What a newcomer's first hour tripped over (issue 16), against real servers through the
CLI: ids by a unique prefix, dataset files (JSONL and CSV, train and val apart), route
weights in any form, optimizers that need a valset, and a rerun that registers nothing new."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.cli_servers import SIG, Servers, cli, start_servers

__all__ = ["cli"]  # the fixture
ROWS = [{"text": f"refund for order {i}", "label": "refund"} for i in range(6)]
ROWS += [{"text": f"password reset {i}", "label": "account"} for i in range(6)]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("cli-newcomer")
    (tmp / "datasets").mkdir()
    (tmp / "datasets" / "train.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp / "datasets" / "val.csv").write_text("text,label\nrefund now,refund\nreset my password,account\n")
    started = start_servers(tmp, versions=2, datasets_dir=tmp / "datasets")
    yield started
    started.gateway.stop()
    started.optimizer.stop()


def _start(cli: Servers, *args: str) -> list[dict]:
    return cli.json(
        "jobs", "start", "labeled", "--signature", SIG, "-O", "LabeledFewShot", "-p", "k=2", *args
    )


def test_predictions_and_jobs_by_a_unique_prefix_of_their_ids(cli: Servers) -> None:
    assert cli.run("deployments", "create", "ids", "p")[0] == 0
    cli.gateway_caught_up()
    code, out = cli.run("predict", "ids", "text=refund please")
    (answer,) = cli.json("predict", "ids", "text=refund please")
    full = answer["prediction_id"]
    assert code == 0 and len(full) == 32  # the line shows the whole id: what a user copies
    (recorded,) = cli.json("outcome", full[:8], "1")
    assert recorded["prediction_id"] == full
    (explained,) = cli.json("explain", full[:6])
    assert explained["prediction_id"] == full
    code, out = cli.run("explain", full[:3])
    assert code == 1 and "INVALID_ARGUMENT" in out and "prediction_id" in out and "at least 4" in out
    code, out = cli.run("explain", "0000" if not full.startswith("0000") else "ffff")
    assert code == 1 and "NOT_FOUND" in out

    events = _start(cli, "--trainset-ref", "train.jsonl", "--val-fraction", "0")
    job_id = events[0]["job_id"]
    (job,) = cli.json("jobs", "get", job_id[:5])
    assert job["job_id"] == job_id
    code, out = cli.run("jobs", "get", job_id[:2])
    assert code == 1 and "INVALID_ARGUMENT" in out and "job_id" in out


def test_a_trainset_and_a_valset_apart_in_jsonl_or_csv(cli: Servers) -> None:
    train = cli.tmp / "train.csv"
    train.write_text("text,label\n" + "".join(f"refund for order {i},refund\n" for i in range(5)))
    val = cli.tmp / "val.jsonl"
    val.write_text("\n".join(json.dumps(r) for r in ROWS[:3]))
    events = _start(cli, "--trainset", str(train), "--valset", str(val))
    assert events[0]["accepted"]["trainset_size"] == 5 and events[0]["accepted"]["valset_size"] == 3
    assert "completed" in events[-1]
    events = _start(cli, "--trainset-ref", "train.jsonl", "--valset-ref", "val.csv")
    assert events[0]["accepted"]["trainset_size"] == 12 and events[0]["accepted"]["valset_size"] == 2


def test_a_malformed_dataset_line_and_a_csv_named_jsonl_are_said_so(cli: Servers) -> None:
    # the CLI ends with SystemExit(message): python prints the one line, no traceback
    bad = cli.tmp / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(SystemExit, match=f"{bad}:2: not JSON"):
        cli.run("optimize", "labeled", "--signature", SIG, "--trainset", str(bad))
    csv_named_jsonl = cli.tmp / "tickets.jsonl"
    csv_named_jsonl.write_text("text,label\nrefund now,refund\n")
    good = cli.tmp / "good.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in ROWS))
    with pytest.raises(SystemExit, match=f"{csv_named_jsonl}:1: not JSON: this looks like a CSV header"):
        cli.run(
            "optimize",
            "labeled",
            "--signature",
            SIG,
            "--trainset",
            str(good),
            "--valset",
            str(csv_named_jsonl),
        )
    with pytest.raises(SystemExit, match="looks like a CSV header"):
        cli.run("evaluate", "p", "1.0.0", "--dataset", str(csv_named_jsonl))


def test_route_weights_as_percents_fractions_or_numbers_mean_the_same(cli: Servers) -> None:
    assert cli.run("deployments", "create", "rw", "p")[0] == 0
    for form in (("1.0.0=90", "1.1.0=10"), ("1.0.0=0.9", "1.1.0=0.1"), ("1.0.0=90%", "1.1.0=10%")):
        (routed,) = cli.json("routes", "rw", *form)
        assert {r["version"]: r["weight"] for r in routed["routes"]} == pytest.approx(
            {"1.0.0": 0.9, "1.1.0": 0.1}
        )
    for bad, said in (
        (("ten",), "routes: expected VERSION=WEIGHT"),
        (("0.9,1.1.0=0.1",), "one VERSION=WEIGHT per argument"),
        (("1.0.0=ten",), "routes: 1.0.0: expected a number or a percent"),
        (("1.0.0=50", "1.0.0=50"), "routes: version '1.0.0' given twice"),
        (("1.0.0=90%", "1.1.0=0.1"), "routes: mixes percents"),
        (("1.0.0=-1", "1.1.0=2"), "routes: 1.0.0: a weight is a number >= 0"),
    ):
        with pytest.raises(SystemExit, match=said):
            cli.run("routes", "rw", *bad)


def test_an_optimizer_that_needs_a_valset_refuses_to_run_without_one(cli: Servers) -> None:
    with cli.opt() as opt:
        jobs_before = len(opt.list_jobs().jobs)
    for args, said in (
        (("--val-fraction", "0"), "valset: BootstrapFewShotWithRandomSearch needs a validation set"),
        (("--val-fraction", "1"), "val_fraction: must be in [0, 1), got 1.0"),
    ):
        code, out = cli.run(
            "optimize", "p", "--signature", SIG, "-O", "BootstrapFewShotWithRandomSearch",
            "--trainset-ref", "train.jsonl", *args,
        )  # fmt: skip
        assert code == 1 and "INVALID_ARGUMENT" in out and said in out
    with cli.opt() as opt:
        assert len(opt.list_jobs().jobs) == jobs_before  # refused before anything was appended
    code, out = cli.run(
        "optimize", "p", "--signature", SIG, "-O", "BootstrapFewShotWithRandomSearch",
        "-p", "num_candidate_programs=1", "--trainset-ref", "train.jsonl", "--valset-ref", "val.csv",
    )  # fmt: skip
    assert code == 0 and "INVALID_ARGUMENT" not in out


def test_jobs_show_lm_calls_and_wall_time_once_ended(cli: Servers) -> None:
    events = _start(cli, "--trainset-ref", "train.jsonl", "--val-fraction", "0.25")
    job_id, completed = events[0]["job_id"], events[-1]["completed"]
    (job,) = cli.json("jobs", "get", job_id)
    assert job["lm_calls"] == completed["usage"]["lm_calls"] > 0  # the JobCompleted's usage
    assert job["wall_seconds"] > 0  # acceptance to JobCompleted on the log's clock
    code, out = cli.run("jobs", "get", job_id)
    assert code == 0 and f"; {job['lm_calls']} LM calls, " in out and "s wall" in out, out
    code, out = cli.run("jobs", "list")
    assert code == 0 and "LM calls" in out and "wall" in out, out
    row = next(line for line in out.splitlines() if job_id in line)
    assert str(job["lm_calls"]) in row, row


def test_the_same_job_twice_names_the_existing_version_and_registers_nothing(cli: Servers) -> None:
    args = ("--trainset-ref", "train.jsonl", "--val-fraction", "0.25", "-p", "k=3")
    first = _start(cli, *args)[-1]["completed"]
    before = cli.json("versions", "labeled")
    again = _start(cli, *args)[-1]["completed"]
    assert again["version"] == first["version"] and again["existing_version"] is True
    assert not first["existing_version"]
    assert cli.json("versions", "labeled") == before  # no VersionRegistered
    code, out = cli.run("jobs", "start", "labeled", "--signature", SIG, "-O", "LabeledFewShot", *args)
    assert code == 0 and f"{first['version']}  (the same artifact as this existing version" in out, out
    other = _start(cli, "--trainset-ref", "train.jsonl", "--val-fraction", "0.25", "-p", "k=5")[-1]
    assert not other["completed"]["existing_version"] and other["completed"]["version"] != first["version"]
