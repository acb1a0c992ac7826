"""Predictions as people read them: an answer with what served it, and an explanation."""

from __future__ import annotations

from dspyops.proto import gateway_pb2 as gpb
from dspyops.render.deployments import routes_text


def prediction_line(response: gpb.PredictResponse) -> str:
    outputs = ", ".join(f"{k}={v!r}" for k, v in response.outputs.items())
    return (
        f"{outputs}  [dim]served by {response.program} {response.version} "
        f"(prediction {response.prediction_id[:12]}, log position {response.log_position}, "
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
    return lines
