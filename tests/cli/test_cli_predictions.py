"""`dspyops predictions predict|outcome|explain` (Predict, RecordOutcome, ExplainPrediction),
`dspyops experiments start|results|conclude|stop` and `dspyops canary start|check`, by their
grouped names, against real servers (test_cli.py runs the old names through the same loop)."""

from __future__ import annotations

import pytest

from tests.support.cli_servers import Servers, cli, servers

__all__ = ["cli", "servers"]  # the fixtures


def _deployment(cli: Servers, name: str) -> None:
    assert cli.run("deployments", "create", name, "p")[0] == 0
    cli.gateway_caught_up()


def test_predict_record_an_outcome_and_explain(cli: Servers) -> None:
    _deployment(cli, "web")
    (answer,) = cli.json("predictions", "predict", "web", "text=refund for order 3", "--key", "u1")
    assert answer["version"] == "1.0.0" and answer["outputs"]["label"]
    code, out = cli.run("predictions", "predict", "web", "text=refund please", "--key", "u1")
    assert code == 0 and "served by p 1.0.0" in out
    (past,) = cli.json("predict", "web", "text=hi", "--as-of", answer["log_position"])
    assert past["log_position"] == answer["log_position"]

    (recorded,) = cli.json("predictions", "outcome", answer["prediction_id"], "1")
    assert recorded["prediction_id"] == answer["prediction_id"] and recorded["version"] == "1.0.0"
    code, out = cli.run("outcome", answer["prediction_id"], "0")
    assert code == 1 and "ALREADY_EXISTS" in out

    (explained,) = cli.json("predictions", "explain", answer["prediction_id"], "--key", "u1")
    assert explained["reproduced"] and explained["routing_key_matches"]
    code, out = cli.run("explain", answer["prediction_id"])
    assert code == 0 and "reproduced" in out and "shown only with the matching routing key" in out


def test_an_experiment_by_its_grouped_commands(cli: Servers) -> None:
    _deployment(cli, "ab")
    (state,) = cli.json(
        "experiments", "start", "ab", "--control", "1.0.0", "--treatment", "1.1.0", "--metric", "continuous",
        "--min-samples", "3", "--weights", "0.5,0.5", "--reason", "which is better",
    )  # fmt: skip
    assert state["experiment"]["treatments"] == ["1.1.0"] and state["experiment"]["metric"] == "CONTINUOUS"
    code, out = cli.run("state", "ab")
    assert code == 0 and "the experiment overrides the routes" in out, out
    with cli.gw() as gw:
        for i in range(8):
            answer = gw.predict("ab", {"text": "refund"}, routing_key=f"v{i}")
            value = "-0.5" if i % 2 else "0.75"  # a negative score is the value, not an option
            assert cli.run("predictions", "outcome", answer.prediction_id, value)[0] == 0
    (results,) = cli.json("experiments", "results", "ab")
    assert sum(int(arm.get("n", 0)) for arm in results["arms"]) == 8
    # four 0.75 and four -0.5: the arms' outcomes add up to 1.0 however they were split
    assert sum(int(arm.get("n", 0)) * arm.get("mean", 0.0) for arm in results["arms"]) == pytest.approx(1.0)
    code, out = cli.run("experiments", "results", "ab")
    assert code == 0 and "decision:" in out
    (stopped,) = cli.json("experiments", "stop", "ab", "--reason", "enough")
    assert "experiment" not in stopped
    code, out = cli.run("experiments", "conclude", "ab")
    assert code == 1 and "FAILED_PRECONDITION" in out  # nothing runs any more


def test_a_canary_by_its_grouped_commands(cli: Servers) -> None:
    _deployment(cli, "can")
    code, out = cli.run(
        "canary", "start", "can", "--candidate", "1.2.0", "--steps", "10,100", "--min-samples", "5"
    )
    assert code == 0 and "1.2.0 at 10% against 1.0.0" in out
    (status,) = cli.json("canary", "check", "can")
    assert status["action"] == "wait" and status["canary"]["candidate"] == "1.2.0"
    code, out = cli.run("canary", "check", "can")
    assert code == 0 and "can: wait" in out


def test_set_a_capture_policy_and_predict_with_a_trace(cli: Servers) -> None:
    _deployment(cli, "captured")
    (changed,) = cli.json(
        "deployments",
        "set-capture-policy",
        "captured",
        "--traces",
        "--field",
        "label",
        "--retention-days",
        "7",
    )
    assert changed["capture"] == {
        "traces": True,
        "fields": ["label"],
        "retention_days": 7,
        "inputs_outputs": False,
    }
    code, out = cli.run("deployments", "get", "captured")
    assert code == 0 and "captures traces (fields label) for 7 days" in out
    code, out = cli.run("deployments", "set-capture-policy", "captured", "--retention-days", "-3")
    assert code == 1 and "INVALID_ARGUMENT" in out and "policy.retention_days" in out

    (answer,) = cli.json("predictions", "predict", "captured", "text=refund [bold]please[/bold]", "--trace")
    assert [(c["name"], c["module"]) for c in answer["trace"]] == [("self", "Predict")]
    code, out = cli.run("predictions", "predict", "captured", "text=refund [bold]please[/bold]", "--trace")
    assert code == 0 and "self (Predict)" in out and "1 LM calls" in out
    assert "in text = 'refund [bold]please[/bold]'" in out  # user text printed as it is, not as markup


def test_explain_shows_each_stage_lm_and_the_kept_trace(cli: Servers) -> None:
    _deployment(cli, "explained")
    assert cli.run("deployments", "set-capture-policy", "explained", "--traces")[0] == 0
    cli.gateway_caught_up()
    (answer,) = cli.json("predictions", "predict", "explained", "text=refund please")
    (explained,) = cli.json("predictions", "explain", answer["prediction_id"])
    assert explained["stage_lms"] == [{"stage": "self", "connection": "offline", "model": ""}]
    assert [c["name"] for c in explained["trace"]] == ["self"]
    code, out = cli.run("explain", answer["prediction_id"])
    assert code == 0 and "stage self: connection offline" in out
    assert "kept trace:" in out and "self (Predict)" in out and "in text = 'refund please'" in out
