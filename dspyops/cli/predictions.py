"""`dspyops predictions predict|outcome|explain`: the gateway's answers, their outcomes,
and why a version served one."""

from __future__ import annotations

import click

from dspyops.cli.command import json_option, rpc_command
from dspyops.cli.parsing import pairs, parse_point
from dspyops.cli.session import Session
from dspyops.render.console import console, print_json
from dspyops.render.predictions import explanation_lines, prediction_line, trace_lines


@click.group()
def predictions() -> None:
    """Predictions through the gateway: predict, record an outcome, explain."""


@rpc_command(predictions, "predict", "Gateway.Predict")
@click.argument("deployment")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--key", default="", help="routing key (sticky assignment), e.g. a user id")
@click.option("--as-of", default="", help="serve from the state at this log position or ISO time")
@click.option("--trace", is_flag=True, help="also show every module call: inputs, outputs, latency, LM usage")
@json_option
@click.pass_obj
def predict(
    session: Session,
    deployment: str,
    inputs: tuple[str, ...],
    key: str,
    as_of: str,
    trace: bool,
    as_json: bool,
) -> int:
    """call a deployment through the gateway: FIELD=VALUE ..."""
    with session.gateway() as gw:
        response = gw.predict(
            deployment,
            pairs(inputs, "inputs"),
            key,
            as_of=parse_point(as_of) if as_of else None,
            include_trace=trace,
        )
    if as_json:
        print_json(response)
    else:
        console.print(prediction_line(response))
        for line in trace_lines(response.trace):
            console.print(line)
    return 0


# a negative score ("-0.5") is the value, not an option
@rpc_command(
    predictions,
    "outcome",
    "Gateway.RecordOutcome",
    changes=True,
    context_settings={"ignore_unknown_options": True},
)
@click.argument("prediction_id")
@click.argument("value", type=float)
@click.option(
    "--expected",
    multiple=True,
    metavar="FIELD=VALUE",
    help="a correct output (repeatable): makes the prediction a training example",
)
@json_option
@click.pass_obj
def outcome(
    session: Session, prediction_id: str, value: float, expected: tuple[str, ...], as_json: bool
) -> int:
    """record the outcome of a prediction (once): 1/0 for binary metrics, a score for continuous ones."""
    with session.gateway() as gw:
        response = gw.record_outcome(
            prediction_id, value, expected=pairs(expected, "--expected"), request_id=session.request_id
        )
    if as_json:
        print_json(response)
    else:
        console.print(f"outcome {value:g} recorded for {response.prediction_id} (version {response.version})")
    return 0


@rpc_command(predictions, "explain", "Gateway.ExplainPrediction")
@click.argument("prediction_id")
@click.option("--key", default="", help="also check this routing key against the recorded hash")
@json_option
@click.pass_obj
def explain(session: Session, prediction_id: str, key: str, as_json: bool) -> int:
    """what served a prediction, and why (recomputed from the log); exit 1 if not reproduced."""
    with session.gateway() as gw:
        explanation = gw.explain_prediction(prediction_id, key)
    if as_json:
        print_json(explanation)
    else:
        for line in explanation_lines(explanation, key):
            console.print(line)
    return 0 if explanation.reproduced else 1
