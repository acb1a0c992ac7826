"""Predictions as people read them: an answer with what served it, and an explanation."""

from __future__ import annotations

from collections.abc import Iterable

from rich.markup import escape

from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.render.deployments import routes_text
from dspyops.render.learning import lineage_lines


def prediction_line(response: gpb.PredictResponse) -> str:
    outputs = escape(", ".join(f"{k}={v!r}" for k, v in response.outputs.items()))  # model text, no markup
    return (
        f"{outputs}  [dim]served by {response.program} {response.version} "
        f"(prediction {response.prediction_id}, log position {response.log_position}, "
        f"{response.latency_ms:.1f} ms)[/dim]"
    )


def explanation_lines(e: gpb.Explanation, routing_key: str) -> list[str]:
    verdict = "[green]reproduced[/green]" if e.reproduced else "[red]NOT reproduced[/red]"
    lines = [
        f"prediction {e.prediction_id} on {e.deployment}: recorded {e.recorded_version} "
        f"(bucket {e.recorded_bucket}), recomputed {e.recomputed_version} (bucket {e.recomputed_bucket}): "
        f"{verdict}",
        f"  state at log position {e.log_position}: routes {routes_text(e.routes)}",
    ]
    if e.changed_position:
        who = e.changed_by or "a caller without a token"
        lines.append(f"  put in force by {e.change} at position {e.changed_position}, caused by {who}")
    lines.append(f"  {e.reason}")
    if routing_key:
        lines.append(
            f"  routing key {routing_key!r} {'matches' if e.routing_key_matches else 'does NOT match'} "
            "the recorded hash"
        )
    if e.hash_withheld:
        lines.append("  the key's hash is shown only with the matching routing key (--key)")
    for stage in e.stage_lms:
        model = f" model {escape(stage.model)}" if stage.model else ""
        name = escape(stage.stage or "(every predictor)")
        lines.append(f"  stage {name}: connection {escape(stage.connection)}{model}")
    for module, digest in sorted(e.code_digests.items()):
        lines.append(f"  code {escape(module)} sha256 {digest}")
    if e.trace_id:  # the OpenTelemetry trace of the Predict call, to look up in the tracing backend
        lines.append(f"  trace {e.trace_id}")
    if e.code_drift:
        lines.append("  [yellow]served with code other than the version's (--allow-code-drift)[/yellow]")
    for sample in e.evaluators:  # why each online evaluator did (or did not) score it
        attached = f"share {sample.share:.0%}" if sample.share else "not attached when served"
        took = "sampled" if sample.sampled else "not sampled"
        scored = f", scored {sample.score:g}" if sample.scored else ""
        lines.append(
            f"  evaluator {escape(sample.name)}: {took} (hash point {sample.point:.4f}, {attached}){scored}"
        )
    if e.HasField("learning"):  # a retrained version: back to its drift detection and feedback
        lines.extend(escape(line) for line in lineage_lines(e.learning))
    if e.trace:
        lines.append("  kept trace:")
        lines.extend(f"  {line}" for line in trace_lines(e.trace))
    return lines


def trace_lines(calls: Iterable[pb.ModuleCall]) -> list[str]:
    """One line per module call, then its inputs and outputs; user text escaped (a value
    with "[...]" in it is data, not markup)."""
    lines: list[str] = []
    for call in calls:
        usage = call.usage
        lines.append(
            f"  [bold]{escape(call.name or '?')}[/bold] ({escape(call.module)}) {call.latency_ms:.1f} ms, "
            f"{usage.lm_calls} LM calls, {usage.input_tokens}+{usage.output_tokens} tokens"
        )
        for side, values in (("in", call.inputs), ("out", call.outputs)):
            for name, value in values.items():
                lines.append(f"    {side} {escape(name)} = {escape(repr(value))}")
        if call.trajectory:
            lines.append(f"    trajectory {escape(call.trajectory[:300])}")
        if call.error:
            lines.append(f"    [red]error[/red] {escape(call.error)}")
    return lines
