"""The CLI against real servers: each command is one client call, output is what users read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dspyops.cli.main import main
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, wait_until


@pytest.fixture(scope="module")
def addresses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    tmp = tmp_path_factory.mktemp("cli")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log)))
    yield ["--optimizer", optimizer.address, "--gateway", gateway.address]
    gateway.stop()
    optimizer.stop()


def cli(capsys: pytest.CaptureFixture[str], addresses: list[str], *args: str) -> tuple[int, str]:
    code = main([*addresses, *args])
    return code, capsys.readouterr().out


def test_the_loop_through_the_cli(
    capsys: pytest.CaptureFixture[str], addresses: list[str], tmp_path: Path
) -> None:
    rows = [{"text": f"refund for order {i}", "label": "refund"} for i in range(6)]
    rows += [{"text": f"password reset {i}", "label": "account"} for i in range(6)]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))

    code, out = cli(
        capsys,
        addresses,
        "optimize",
        "tickets",
        "--signature",
        "text -> label",
        "--dataset",
        str(data),
        "-O",
        "LabeledFewShot",
        "-p",
        "k=4",
        "--json",
    )
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert "accepted" in events[0] and events[-1]["completed"]["version"] == "1.0.0"

    code, out = cli(
        capsys,
        addresses,
        "optimize",
        "tickets",
        "--signature",
        "text -> label",
        "--dataset",
        "support_tickets",
        "-O",
        "BootstrapFewShot",
        "-p",
        "max_bootstrapped_demos=2",
    )
    assert code == 0 and "completed" in out and "1.1.0" in out and "baseline score" in out

    code, out = cli(capsys, addresses, "versions", "tickets")
    assert code == 0 and "1.0.0" in out and "1.1.0" in out and "BootstrapFewShot" in out
    code, out = cli(capsys, addresses, "promote", "tickets", "1.1.0")
    assert code == 0 and "is now production" in out
    code, out = cli(capsys, addresses, "alias", "tickets", "@champion", "1.1.0")
    assert code == 0 and "@champion -> 1.1.0" in out
    code, out = cli(capsys, addresses, "deploy", "web", "tickets")
    assert code == 0 and "1.1.0=1" in out
    code, out = cli(
        capsys, addresses, "routes", "web", "1.0.0=0.2", "@champion=0.8", "--expected-version", "2"
    )
    assert code == 0 and "1.0.0=0.2, 1.1.0=0.8" in out
    code, out = cli(capsys, addresses, "routes", "web", "1.0.0=1", "--expected-version", "2")
    assert code == 1 and "ABORTED" in out

    code, out = cli(capsys, addresses, "log", "--json", "--stream", "deployment-")
    position = max(int(json.loads(line)["position"]) for line in out.splitlines())
    code, out = cli(capsys, addresses, "programs")
    assert code == 0 and "tickets" in out

    def gateway_caught_up() -> bool:
        code, out = cli(capsys, addresses, "predict", "web", "text=refund please", "--key", "u1", "--json")
        return code == 0 and int(json.loads(out)["log_position"]) >= position

    assert wait_until(gateway_caught_up, 5)
    code, out = cli(capsys, addresses, "predict", "web", "text=I want my money back", "--key", "u1")
    assert code == 0 and "served by tickets" in out
    code, out = cli(capsys, addresses, "predict", "web", "txt=wrong field")
    assert code == 1 and "INVALID_ARGUMENT" in out and "inputs" in out

    code, out = cli(capsys, addresses, "jobs")
    assert code == 0 and "LabeledFewShot" in out and "succeeded" in out
    code, out = cli(capsys, addresses, "log")
    assert code == 0 and "registered tickets 1.0.0" in out and "routes of web" in out
    code, out = cli(capsys, addresses, "log", "verify")
    assert code == 0 and "hash chain intact" in out


def test_experiment_rollback_state_and_explain_through_the_cli(
    capsys: pytest.CaptureFixture[str], addresses: list[str]
) -> None:
    code, out = cli(
        capsys,
        addresses,
        "experiment",
        "start",
        "web",
        "--control",
        "1.0.0",
        "--treatment",
        "1.1.0",
        "--min-samples",
        "5",
        "--json",
    )
    assert code == 0
    started = json.loads(out)
    assert started["experiment"]["control"] == "1.0.0"
    predictions = []
    for i in range(12):
        code, out = cli(
            capsys, addresses, "predict", "web", "text=I want a refund", "--key", f"u{i}", "--json"
        )
        predictions.append(json.loads(out))
        assert cli(capsys, addresses, "outcome", predictions[-1]["prediction_id"], str(i % 2))[0] == 0
    code, out = cli(capsys, addresses, "experiment", "results", "web")
    assert code == 0 and "always-valid p" in out and "decision:" in out
    code, out = cli(capsys, addresses, "explain", predictions[3]["prediction_id"], "--key", "u3")
    assert code == 0 and "reproduced" in out and "matches the recorded hash" in out
    code, out = cli(capsys, addresses, "state", "web", "--as-of", started["log_position"])
    assert code == 0 and "experiment" in out
    code, out = cli(capsys, addresses, "experiment", "conclude", "web", "--keep-control")
    assert code == 0 and "1.0.0=1" in out
    code, out = cli(capsys, addresses, "rollback", "web", "--to", str(int(started["log_position"]) - 1))
    assert code == 0 and "rolled back web" in out
    code, out = cli(capsys, addresses, "log", "--type", "ExperimentStarted,RolledBack")
    assert (
        code == 0 and "experiment" in out and "rolled back to position" in out and "routes of web" not in out
    )
    with pytest.raises(SystemExit, match="expected a log position or an ISO time"):
        cli(capsys, addresses, "rollback", "web", "--to", "not-a-time")


def test_optimizers_presets_and_canary_through_the_cli(
    capsys: pytest.CaptureFixture[str], addresses: list[str]
) -> None:
    code, out = cli(capsys, addresses, "optimizers")
    assert code == 0 and "MIPROv2" in out and "GEPA" in out and "quick-bootstrap" in out
    code, out = cli(
        capsys,
        addresses,
        "optimize",
        "tickets",
        "--signature",
        "text -> label",
        "--dataset",
        "support_tickets",
        "--preset",
        "quick-bootstrap",
        "--json",
    )
    assert code == 0
    last = json.loads(out.splitlines()[-1])
    assert last["completed"]["version"] == "1.2.0"
    code, out = cli(
        capsys,
        addresses,
        "canary",
        "start",
        "web",
        "--candidate",
        "1.2.0",
        "--steps",
        "10,100",
        "--min-samples",
        "5",
    )
    assert code == 0 and "canary canary-" in out and "1.2.0 at 10%" in out
    code, out = cli(capsys, addresses, "canary", "check", "web")
    assert code == 0 and "wait" in out
