"""Deployments as people read them: routes, the registry's view of a deployment, the
gateway's folded state (with its experiment and canary), shadow results."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.console import console, print_json
from dspyops.render.evaluators import evaluator_text
from dspyops.render.experiments import canary_terms


def routes_text(routes: Iterable[pb.Route]) -> str:
    return ", ".join(f"{r.version}={r.weight:g}" for r in routes) or "(none yet)"


def deployment_line(deployment: opb.Deployment) -> str:
    """The registry's view of a deployment (`deployments get|set-routes`)."""
    routes = routes_text(deployment.routes)
    line = f"{deployment.deployment} (stream version {deployment.stream_version}): {routes}"
    if deployment.HasField("capture"):
        line += f"; captures {capture_text(deployment.capture)}"
    return line


def capture_text(policy: pb.CapturePolicy) -> str:
    """A capture policy in words, e.g. "traces, inputs (fields text, label) for 30 days"."""
    kept = [name for name, on in (("traces", policy.traces), ("inputs", policy.inputs_outputs)) if on]
    if not kept:
        return "nothing beyond the decision"
    text = " and ".join(kept)
    if policy.fields:
        text += f" (fields {', '.join(policy.fields)})"
    return text + (f" for {policy.retention_days} days" if policy.retention_days else ", kept until deleted")


def deployments_table(deployments: Iterable[opb.Deployment]) -> Table:
    table = Table(title="deployments")
    for column in ("deployment", "program", "routes", "stream version", "changed at"):
        table.add_column(column)
    for d in deployments:
        table.add_row(
            d.deployment, d.program, routes_text(d.routes), str(d.stream_version), str(d.log_position)
        )
    return table


def print_state(state: gpb.DeploymentState, as_json: bool) -> None:
    """A gateway's state of a deployment, with its experiment and canary when one runs."""
    if as_json:
        print_json(state)
        return
    console.print(
        f"{state.deployment} ({state.program}) at log position {state.log_position}: "
        f"routes {routes_text(state.routes)}; state hash {state.state_hash[:16]}"
    )
    if state.HasField("experiment"):
        e = state.experiment
        console.print(
            f"  experiment {e.experiment_id}: control {e.control}, treatments {', '.join(e.treatments)}, "
            f"weights {', '.join(f'{w:g}' for w in e.weights)}, hash v{e.hash_version}, seed {e.seed!r}"
        )
        # the routes line above reads as what serves, but the experiment's arms do
        # (keys outside its coverage go to its control)
        console.print("  the experiment overrides the routes until it stops: its arms serve every key")
    if state.HasField("canary"):
        c = state.canary
        console.print(
            f"  canary {c.canary_id}: {c.candidate} vs {c.baseline}, "
            f"step {c.step} ({c.steps[c.step]:g}%){canary_terms(c)}"
        )
        if state.canary_check:
            console.print(f"  last check: {state.canary_check}")
    for evaluator in state.evaluators:  # scores of source evaluator:<name>: `dspyops evaluators list`
        console.print(f"  evaluator {evaluator_text(evaluator)}", highlight=False)


def states_table(states: gpb.ListDeploymentStatesResponse) -> Table:
    table = Table(title=f"deployments served by this gateway (log position {states.log_position})")
    for column in ("deployment", "program", "routes", "experiment", "canary", "changed at"):
        table.add_column(column)
    for s in states.deployments:
        table.add_row(
            s.deployment,
            s.program,
            routes_text(s.routes),
            s.experiment.experiment_id if s.HasField("experiment") else "-",
            s.canary.canary_id if s.HasField("canary") else "-",
            str(s.changed_at_position),
        )
    return table


def shadow_table(results: gpb.ShadowResults) -> Table:
    table = Table(title=f"shadow traffic of {results.deployment}")
    for column in ("version", "requests", "errors", "agreement with primary", "p50 ms", "primary p50 ms"):
        table.add_column(column)
    for v in results.versions:
        table.add_row(
            v.version,
            str(v.n),
            str(v.errors),
            f"{v.agreement:.1%}",
            f"{v.latency_p50_ms:.1f}",
            f"{v.primary_latency_p50_ms:.1f}",
        )
    return table
