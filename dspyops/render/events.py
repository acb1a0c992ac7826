"""The audit log as people read it: a line per event saying what it did, the table of
`dspyops log` (and the demo), the follow line, and a chain walk's verdict."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.table import Table

from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.console import console, print_json_object
from dspyops.render.deployments import capture_text
from dspyops.render.drift import detected_text, monitor_text
from dspyops.render.evaluators import evaluator_text
from dspyops.render.experiments import canary_terms
from dspyops.render.learning import policy_set_text, run_ended_text, triggered_text
from dspyops.render.usage import lm_calls


def describe_event(event: pb.Event) -> str:
    """One line saying what a log event did (for `dspyops log` and the demo)."""
    kind = event.payload.WhichOneof("kind")
    if kind is None:  # a payload this build does not know (or one sent raw only)
        return event.type
    p: Any = getattr(event.payload, kind)  # the oneof's message, whichever kind it is
    match kind:
        case "job_accepted":
            sizes = f"{p.trainset_size} train / {p.valset_size} val"
            return f"job {p.job_id} accepted: {p.optimizer} on {p.program} ({sizes})"
        case "job_started":
            return f"started {p.optimizer}" + (
                f", {p.planned_trials} trial{'s' if p.planned_trials != 1 else ''} planned"
                if p.planned_trials
                else ""
            )
        case "baseline_evaluated":
            return f"baseline score {p.score:.3f} on {p.examples} examples"
        case "trial_completed":
            return f"trial {p.trial}: score {p.score:.3f} (best {p.best_score:.3f}) {p.candidate[:60]!r}"
        case "job_completed":
            return (
                f"completed: {p.program} {p.version} score {p.final_score:.3f} "
                f"(baseline {p.baseline_score:.3f}, {p.improvement:+.3f}), {lm_calls(p.usage)}"
            )
        case "job_failed":
            return f"failed: {p.error[:100]}"
        case "job_cancelled":
            return f"cancelled: {p.reason}" + (f" ({lm_calls(p.usage)})" if p.HasField("usage") else "")
        case "job_interrupted":
            return f"interrupted: {p.reason}"
        case "job_claimed":
            return f"claimed by {p.owner or '?'} (attempt {p.attempt}, fence {event.version})"
        case "job_retried":
            why = p.reason or f"the lease of {p.lost_owner or '?'} expired"
            return f"retry, attempt {p.attempt}: {why}"
        case "job_lease_renewed":
            return f"lease renewed (fence {p.fence})"
        case "job_lease_released":
            return f"lease released (fence {p.fence})" + (f": {p.reason}" if p.reason else "")
        case "job_cancel_requested":
            return "cancel requested" + (f": {p.reason}" if p.reason else "")
        case "version_registered":
            return (
                f"registered {p.program} {p.version} ({pb.VersionStatus.Name(p.status).lower()}), "
                f"artifact {p.artifact_digest[:12]}, job {p.lineage.job_id}"
            )
        case "version_status_changed":
            return (
                f"{p.program} {p.version}: {pb.VersionStatus.Name(p.previous_status).lower()} -> "
                f"{pb.VersionStatus.Name(p.status).lower()}" + (f" ({p.reason})" if p.reason else "")
            )
        case "alias_set":
            return f"{p.program} @{p.alias} -> {p.version}"
        case "deployment_created":
            return f"deployment {p.deployment} created for {p.program}"
        case "experiment_started":
            e = p.experiment
            return (
                f"experiment {e.experiment_id} on {p.deployment}: control {e.control} vs "
                f"{', '.join(e.treatments)} ({pb.MetricKind.Name(e.metric).lower()}, hash v{e.hash_version})"
            )
        case "experiment_concluded":
            return f"experiment {p.experiment_id} concluded ({p.decision}): {p.winner} serves {p.deployment}"
        case "experiment_stopped":
            return f"experiment {p.experiment_id} on {p.deployment} stopped" + (
                f" ({p.reason})" if p.reason else ""
            )
        case "rolled_back":
            routes = ", ".join(f"{r.version}:{r.weight:g}" for r in p.routes)
            return f"{p.deployment} rolled back to position {p.to_position}: {routes}" + (
                f" ({p.reason})" if p.reason else ""
            )
        case "routes_set":
            routes = ", ".join(f"{r.version}:{r.weight:g}" for r in p.routes)
            return f"routes of {p.deployment}: {routes}" + (f" ({p.reason})" if p.reason else "")
        case "capture_policy_set":
            return f"{p.deployment} captures {capture_text(p.policy)}" + (
                f" ({p.reason})" if p.reason else ""
            )
        case "drift_monitor_set":
            return f"drift monitor of {p.deployment}: {monitor_text(p.monitor)}" + (
                f" ({p.reason})" if p.reason else ""
            )
        case "drift_detected":
            return detected_text(p)
        case "evaluator_set":
            return f"evaluator of {p.deployment}: {evaluator_text(p.evaluator)}" + (
                f" ({p.reason})" if p.reason else ""
            )
        case "learning_policy_set":
            return policy_set_text(p)
        case "learning_triggered":
            return triggered_text(p)
        case "learning_run_ended":
            return run_ended_text(p)
        case "job_progress":
            return f"progress {p.step}/{p.total or '?'}: {p.message[:80]}"
        case "gate_evaluated":
            return f"gate {'passed' if p.passed else 'failed'}: {p.reason[:100]}"
        case "evaluation_recorded":
            r = p.report
            return f"evaluated {p.program} {p.version}: {r.metric} {r.score:.3f} on {r.examples} examples"
        case "canary_started":
            c = p.canary
            steps = ", ".join(f"{s:g}%" for s in c.steps)
            return (
                f"canary {c.canary_id} on {p.deployment}: {c.candidate} vs {c.baseline}, "
                f"steps {steps}{canary_terms(c)}"
            )
        case "canary_advanced":
            return f"canary {p.canary_id} on {p.deployment} advanced to {p.percent:g}% (step {p.step})"
        case "canary_ended":
            failed = ", ".join(g.guardrail for g in p.check.guardrails if g.failed)
            outcome = "promoted its candidate" if p.promoted else f"rolled back ({failed or 'outcome'})"
            return f"canary {p.canary_id} on {p.deployment} {outcome}: {p.reason[:100]}"
        case "corpus_registered":
            return f"corpus {p.corpus}: {p.count} documents, digest {p.digest[:12]}"
    return event.type


def log_table(events: Iterable[pb.Event], title: str = "audit log") -> Table:
    table = Table(title=title)
    for column in ("pos", "recorded at", "actor", "stream", "v", "event"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(
            str(event.position),
            event.recorded_at.ToDatetime().strftime("%H:%M:%S.%f")[:-3],
            event.actor or "-",
            event.stream,
            str(event.version),
            describe_event(event),
        )
    return table


def log_line(event: pb.Event) -> str:
    """One line of `dspyops log follow`."""
    return f"{event.position:>6} {event.actor or '-':<12} {event.stream:<32} {describe_event(event)}"


_VERIFY_FIELDS = ("ok", "checked", "first_broken_position", "reason", "v1_links", "v2_links", "keyed_links")


def print_verified(result: opb.VerifyLogResponse, as_json: bool) -> int:
    """A chain walk's verdict; 0 when the chain is intact, 1 when it is broken."""
    if as_json:
        print_json_object({name: getattr(result, name) for name in _VERIFY_FIELDS})
    elif result.ok:
        console.print(
            f"log ok: {result.checked} events, hash chain intact ({result.v1_links} v1 links, "
            f"{result.v2_links} v2 links, {result.keyed_links} of them keyed)"
        )
    else:
        console.print(
            f"[red]log broken[/red] at position {result.first_broken_position}: {result.reason} "
            f"(checked before it: {result.v1_links} v1 links, {result.v2_links} v2 links, "
            f"{result.keyed_links} keyed)"
        )
    return 0 if result.ok else 1
