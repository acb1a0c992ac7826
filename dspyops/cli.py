"""`dspyops`: a thin command-line face over dspyops.client (one subcommand per call).

Addresses come from --optimizer / --gateway or the DSPYOPS_OPTIMIZER / DSPYOPS_GATEWAY
environment variables. `--json` prints protobuf messages as one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from dspyops import client as api
from dspyops.proto import events_pb2 as pb
from dspyops.rpc import Security

# Piped output (CI logs, tests, `| less`) gets a wide fixed width instead of rich's 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)
DEFAULT_OPTIMIZER = "127.0.0.1:50051"
DEFAULT_GATEWAY = "127.0.0.1:50052"


def _dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def _print_json(message: Message) -> None:
    print(json.dumps(_dict(message), sort_keys=True), flush=True)


def _security(args: argparse.Namespace) -> dict[str, str]:
    return {"token": args.token, "tls_ca": args.tls_ca, "tls_cert": args.tls_cert, "tls_key": args.tls_key}


def _optimizer(args: argparse.Namespace) -> api.OptimizerClient:
    return api.OptimizerClient(args.optimizer, **_security(args))


def _gateway(args: argparse.Namespace) -> api.GatewayClient:
    return api.GatewayClient(args.gateway, **_security(args))


def _server_security(args: argparse.Namespace) -> Security:
    return Security(
        tokens_file=args.tokens_file,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
    )


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{what}: expected key=value, got {item!r}")
        result[key] = value
    return result


def _param_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def read_rows(path_or_name: str) -> list[dict[str, str]]:
    """Rows of a JSONL file, or of a dataset shipped with dspyops (e.g. support_tickets)."""
    path = Path(path_or_name)
    if not path.exists():
        path = Path(__file__).parent / "data" / f"{path_or_name}.jsonl"
    if not path.exists():
        raise SystemExit(f"dataset: no file {path_or_name!r} and no shipped dataset of that name")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def split_rows(rows: list[dict[str, str]], val_fraction: float, seed: int) -> tuple[list, list]:
    import random

    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    cut = len(shuffled) - round(len(shuffled) * val_fraction)
    return shuffled[:cut], shuffled[cut:]


# ---------------------------------------------------------------- rendering


def describe_event(event: pb.Event) -> str:
    """One line saying what a log event did (for `dspyops log` and the demo)."""
    kind = event.payload.WhichOneof("kind")
    p = getattr(event.payload, kind) if kind else None
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
                f"(baseline {p.baseline_score:.3f}, {p.improvement:+.3f}), {p.usage.lm_calls} LM calls"
            )
        case "job_failed":
            return f"failed: {p.error[:100]}"
        case "job_cancelled":
            return f"cancelled: {p.reason}"
        case "job_interrupted":
            return f"interrupted: {p.reason}"
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
            return f"canary {c.canary_id} on {p.deployment}: {c.candidate} vs {c.baseline}, steps {steps}"
        case "canary_advanced":
            return f"canary {p.canary_id} on {p.deployment} advanced to {p.percent:g}% (step {p.step})"
        case "canary_ended":
            outcome = "promoted its candidate" if p.promoted else "rolled back"
            return f"canary {p.canary_id} on {p.deployment} {outcome}: {p.reason[:100]}"
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


def render_job_events(events: Iterable, as_json: bool) -> Any:
    """Print a job's event stream: JSON lines, or a rich progress bar with a line per result.
    Returns the last event (Completed / Failed / Cancelled)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    last = None
    if as_json:
        for event in events:
            _print_json(event)
            last = event
        return last
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("queued", total=None, note="")
        for event in events:
            last = event
            kind = event.WhichOneof("kind")
            p = getattr(event, kind)
            if kind == "accepted":
                bar.update(task, description=f"job {p.job_id}")
            elif kind == "started":
                bar.update(task, total=p.planned_trials or None, note=p.optimizer)
            elif kind == "baseline":
                bar.console.print(f"  baseline score: {p.score:.3f} on {p.examples} examples")
            elif kind == "progress":
                bar.update(task, note=p.message[:60])
            elif kind == "trial":
                bar.update(task, completed=p.trial, note=f"best {p.best_score:.3f}")
                bar.console.print(
                    f"  trial {p.trial}: score {p.score:.3f}  best {p.best_score:.3f}  {p.candidate[:70]}"
                )
            elif kind == "completed":
                bar.update(task, completed=bar.tasks[0].total or p.usage.lm_calls, note="done")
                bar.console.print(
                    f"  [green]completed[/green]: {p.program} {p.version}  score {p.final_score:.3f} "
                    f"(baseline {p.baseline_score:.3f}, {p.improvement:+.3f})  gate: {p.gate_reason}  "
                    f"{p.usage.lm_calls} LM calls, {p.wall_seconds:.1f}s"
                )
            elif kind in ("failed", "cancelled", "interrupted"):
                bar.console.print(
                    f"  [red]{kind}[/red]: {getattr(p, 'error', '') or getattr(p, 'reason', '')}"
                )
    return last


# ---------------------------------------------------------------- commands


def cmd_serve(args: argparse.Namespace) -> int:
    """Run `python -m optimizer_svc` / `python -m gateway_svc` in this process (exec: same pid,
    same signals), so the kernel never imports a service. The client's global --tls-cert and
    --tls-key name the server's certificate here and are passed on."""
    if args.tls_ca:  # it used to double as the gateway's upstream CA: say where that went
        raise SystemExit(
            "serve: --tls-ca verifies servers for client commands; a server takes --tls-client-ca, "
            "a gateway's optimizer is verified with --upstream-tls-ca"
        )
    forwarded = [*(["--tls-cert", args.tls_cert] if args.tls_cert else [])]
    forwarded += ["--tls-key", args.tls_key] if args.tls_key else []
    module = {"optimizer": "optimizer_svc", "gateway": "gateway_svc"}[args.service]
    argv = [sys.executable, "-m", module, *forwarded, *args.service_args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover - execv does not return


def cmd_optimize(args: argparse.Namespace) -> int:
    rows = read_rows(args.dataset)
    trainset, valset = split_rows(rows, args.val_fraction, args.seed) if args.val_fraction > 0 else (rows, [])
    params = {k: _param_value(v) for k, v in _pairs(args.param, "--param").items()}
    lm = pb.LMConfig(
        connection=args.connection or "",
        model=args.model or "",
        api_base=args.api_base or "",
        api_key_env=args.api_key_env or "",
        temperature=args.temperature,
        max_tokens=args.max_tokens,
    )
    with _optimizer(args) as opt:
        events = opt.start_optimization(
            args.program,
            args.signature,
            trainset=trainset,
            valset=valset,
            # without -O, a preset picks the optimizer; with neither, BootstrapFewShot
            optimizer=args.optimizer_name or ("" if args.preset else "BootstrapFewShot"),
            preset=args.preset,
            params=params,
            metric=args.metric,
            module=args.module,
            lm=lm,
            min_score=args.min_score,
            auto_promote=args.auto_promote,
            request_id=args.request_id,
        )
        last = render_job_events(events, args.json)
    return 0 if last is not None and last.WhichOneof("kind") == "completed" else 1


def cmd_jobs(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        jobs = opt.list_jobs(args.program or "")
    if args.json:
        for job in jobs:
            _print_json(job)
        return 0
    table = Table(title="jobs")
    for column in ("job", "program", "optimizer", "state", "baseline", "final", "trials", "version"):
        table.add_column(column)
    for job in jobs:
        table.add_row(
            job.job_id,
            job.program,
            job.optimizer,
            opb_state(job.state),
            f"{job.baseline_score:.3f}",
            f"{job.final_score:.3f}",
            str(job.trials),
            job.version or "-",
        )
    console.print(table)
    return 0


def opb_state(value: int) -> str:
    from dspyops.proto import optimizer_pb2 as opb

    return opb.JobState.Name(value).lower()


def cmd_watch(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        last = render_job_events(opt.watch_job(args.job_id, args.after), args.json)
    return 0 if last is not None else 1


def cmd_cancel(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        job = opt.cancel_job(args.job_id, args.reason)
    console.print(f"cancel requested for job {job.job_id} (state {opb_state(job.state)})")
    return 0


def cmd_programs(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        programs = opt.list_programs()
    if args.json:
        for program in programs:
            _print_json(program)
        return 0
    table = Table(title="programs")
    for column in ("program", "versions", "production", "aliases"):
        table.add_column(column)
    for p in programs:
        aliases = ", ".join(f"@{a}={v}" for a, v in sorted(p.aliases.items()))
        table.add_row(p.program, ", ".join(p.versions), p.production_version or "-", aliases or "-")
    console.print(table)
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        versions = opt.list_versions(args.program)
    if args.json:
        for version in versions:
            _print_json(version)
        return 0
    table = Table(title=f"versions of {args.program}")
    for column in ("version", "status", "optimizer", "baseline", "score", "job", "artifact", "aliases"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            v.version,
            pb.VersionStatus.Name(v.status).lower(),
            v.lineage.optimizer,
            f"{v.lineage.baseline_score:.3f}",
            f"{v.lineage.final_score:.3f}",
            v.lineage.job_id,
            v.artifact_digest[:12],
            ", ".join("@" + a for a in v.aliases) or "-",
        )
    console.print(table)
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        version = opt.set_version_status(
            args.program, args.version, args.status, args.reason, request_id=args.request_id
        )
    console.print(
        f"{version.program} {version.version} is now {pb.VersionStatus.Name(version.status).lower()}"
    )
    return 0


def cmd_alias(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        info = opt.set_alias(args.program, args.alias, args.version, request_id=args.request_id)
    console.print(
        f"{info.program} @{args.alias.removeprefix('@')} -> {info.aliases[args.alias.removeprefix('@')]}"
    )
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        deployment = opt.create_deployment(args.deployment, args.program, request_id=args.request_id)
    console.print(
        f"deployment {deployment.deployment} serves {deployment.program}; routes: "
        f"{_routes_text(deployment.routes)}"
    )
    return 0


def _routes_text(routes: Iterable[pb.Route]) -> str:
    return ", ".join(f"{r.version}={r.weight:g}" for r in routes) or "(none yet)"


def cmd_routes(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        if not args.routes:
            deployment = opt.get_deployment(args.deployment)
        else:
            weights = {k: float(v) for k, v in _pairs(args.routes, "routes").items()}
            deployment = opt.set_routes(
                args.deployment,
                weights,
                expected_version=args.expected_version,
                reason=args.reason,
                request_id=args.request_id,
            )
    console.print(
        f"{deployment.deployment} (stream version {deployment.stream_version}): "
        f"{_routes_text(deployment.routes)}"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    with _gateway(args) as gw:
        response = gw.predict(args.deployment, _pairs(args.inputs, "inputs"), args.key)
    if args.json:
        _print_json(response)
    else:
        outputs = ", ".join(f"{k}={v!r}" for k, v in response.outputs.items())
        console.print(
            f"{outputs}  [dim]served by {response.program} {response.version} "
            f"(prediction {response.prediction_id[:12]}, log position {response.log_position}, "
            f"{response.latency_ms:.1f} ms)[/dim]"
        )
    return 0


def _chain_key_arg(args: argparse.Namespace) -> bytes | None:
    from dspyops.keyfiles import KeyFileError, load_chain_key

    if not args.chain_key_file:
        return None
    try:
        return load_chain_key(args.chain_key_file)
    except KeyFileError as exc:
        raise SystemExit(f"log: {exc}") from None


def _print_verified(result: Any, as_json: bool) -> int:
    if as_json:
        fields = ("ok", "checked", "first_broken_position", "reason", "v1_links", "v2_links", "keyed_links")
        print(json.dumps({name: getattr(result, name) for name in fields}, sort_keys=True), flush=True)
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


def cmd_log_verify(args: argparse.Namespace) -> int:
    if not args.log:  # ask the optimizer, which verifies with its own chain key
        with _optimizer(args) as opt:
            return _print_verified(opt.verify_log(), args.json)
    from dspyops.eventlog import SQLiteEventStore, StoreUnavailable, log_file
    from dspyops.logwire import verify_response

    key = _chain_key_arg(args)
    try:
        store = SQLiteEventStore(log_file(args.log), read_only=True, chain_key=key)
    except StoreUnavailable as exc:
        raise SystemExit(f"log verify: {exc}") from None
    try:
        return _print_verified(verify_response(store.verify()), args.json)
    finally:
        store.close()


def cmd_log_backup(args: argparse.Namespace) -> int:
    from dspyops.backup import BackupRefused, backup_log
    from dspyops.eventlog import log_file

    if not args.dest:
        raise SystemExit("log backup: give the destination file: dspyops log backup DEST [--log FILE]")
    log = log_file(args.log or "dspyops.db")
    try:
        report = backup_log(
            log,
            args.dest,
            force=args.force,
            chain_key=_chain_key_arg(args),
            predictions=args.predictions or None,
        )
    except BackupRefused as exc:
        raise SystemExit(f"log backup: {exc}") from None
    if not args.json:
        console.print(f"backed up {report.log} to {report.dest}: {report.head} events")
        for src, dst in report.files:
            console.print(f"  and {src} to {dst}")
        console.print("  on the copy: ", end="")
    from dspyops.logwire import verify_response

    return _print_verified(verify_response(report.verified), args.json)


def cmd_log(args: argparse.Namespace) -> int:
    if args.action == "verify":
        return cmd_log_verify(args)
    if args.action == "backup":
        return cmd_log_backup(args)
    with _optimizer(args) as opt:
        if args.follow:
            for event in opt.subscribe_log(args.from_position, args.stream or ""):
                if not _log_filter(args, event):
                    continue
                if args.json:
                    _print_json(event)
                else:
                    who = event.actor or "-"
                    console.print(f"{event.position:>6} {who:<12} {event.stream:<32} {describe_event(event)}")
            return 0
        response = opt.read_log(args.from_position, args.limit, args.stream or "")
    events = [e for e in response.events if _log_filter(args, e)]
    if args.json:
        for event in events:
            _print_json(event)
    else:
        console.print(log_table(events))
    return 0


def _log_filter(args: argparse.Namespace, event: pb.Event) -> bool:
    if args.type and event.type.rsplit(".", 1)[-1] not in args.type.split(","):
        return False
    if args.actor and event.actor != args.actor:
        return False
    when = event.recorded_at.ToDatetime(tzinfo=UTC)
    if args.since and when < parse_point(args.since):  # type: ignore[operator]
        return False
    return not (args.until and when > parse_point(args.until))  # type: ignore[operator]


def parse_point(text: str) -> int | datetime:
    """A log position ("42") or an ISO time ("2026-11-22T06:00:00Z"; naive means UTC)."""
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"expected a log position or an ISO time, got {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def cmd_outcome(args: argparse.Namespace) -> int:
    with _gateway(args) as gw:
        response = gw.record_outcome(args.prediction_id, args.value, request_id=args.request_id)
    console.print(
        f"outcome {args.value:g} recorded for {response.prediction_id} (version {response.version})"
    )
    return 0


def _print_state(state: Any, as_json: bool) -> None:
    if as_json:
        _print_json(state)
        return
    console.print(
        f"{state.deployment} ({state.program}) at log position {state.log_position}: "
        f"routes {_routes_text(state.routes)}; state hash {state.state_hash[:16]}"
    )
    if state.HasField("experiment"):
        e = state.experiment
        console.print(
            f"  experiment {e.experiment_id}: control {e.control}, treatments {', '.join(e.treatments)}, "
            f"weights {', '.join(f'{w:g}' for w in e.weights)}, hash v{e.hash_version}, seed {e.seed!r}"
        )
    if state.HasField("canary"):
        c = state.canary
        console.print(
            f"  canary {c.canary_id}: {c.candidate} vs {c.baseline}, step {c.step} ({c.steps[c.step]:g}%)"
        )
        if state.canary_check:
            console.print(f"  last check: {state.canary_check}")


def cmd_experiment(args: argparse.Namespace) -> int:
    with _gateway(args) as gw:
        if args.action == "start":
            weights = [float(w) for w in args.weights.split(",")] if args.weights else []
            state = gw.start_experiment(
                args.deployment,
                args.control,
                args.treatment,
                metric=args.metric,
                weights=weights,
                alpha=args.alpha,
                min_samples_per_arm=args.min_samples,
                sequential=not args.fixed_horizon,
                hash_version=args.hash_version,
                seed=args.seed,
                coverage=args.coverage,
                reason=args.reason,
                request_id=args.request_id,
            )
            _print_state(state, args.json)
        elif args.action == "results":
            results = gw.get_experiment_results(args.deployment)
            if args.json:
                _print_json(results)
            else:
                console.print(results_table(results))
                console.print(
                    f"decision: [bold]{results.decision}[/bold] - {results.reason} "
                    f"(SRM p = {results.srm_p_value:.3g})"
                )
        elif args.action == "conclude":
            _print_state(
                gw.conclude_experiment(
                    args.deployment,
                    promote_winner=not args.keep_control,
                    reason=args.reason,
                    request_id=args.request_id,
                ),
                args.json,
            )
        else:
            _print_state(
                gw.stop_experiment(args.deployment, args.reason, request_id=args.request_id), args.json
            )
    return 0


def results_table(results: Any) -> Table:
    e = results.experiment
    table = Table(
        title=f"experiment {e.experiment_id} on {results.deployment} "
        f"({pb.MetricKind.Name(e.metric).lower()}, alpha {e.alpha:g})"
    )
    for column in (
        "version",
        "arm",
        "assigned",
        "outcomes",
        "mean",
        "95% CI",
        "lift",
        "lift CI",
        "p",
        "always-valid p",
    ):
        table.add_column(column)
    for arm in results.arms:
        control = arm.control
        table.add_row(
            arm.version,
            "control" if control else "treatment",
            str(arm.assigned),
            f"{arm.n} ({arm.excluded} out of range, left out)" if arm.excluded else str(arm.n),
            f"{arm.mean:.3f}",
            f"[{arm.ci_low:.3f}, {arm.ci_high:.3f}]",
            "-" if control else f"{arm.lift:+.3f}",
            "-" if control else f"[{arm.lift_ci_low:+.3f}, {arm.lift_ci_high:+.3f}]",
            "-" if control else f"{arm.p_value:.3g}",
            "-" if control else f"{arm.sequential_p_value:.3g}",
        )
    return table


def cmd_rollback(args: argparse.Namespace) -> int:
    with _gateway(args) as gw:
        state = gw.rollback(
            args.deployment, parse_point(args.to), reason=args.reason, request_id=args.request_id
        )
    console.print(
        f"rolled back {state.deployment} to {args.to}: routes now {_routes_text(state.routes)} "
        f"(log position {state.log_position})"
    )
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    with _gateway(args) as gw:
        state = gw.get_deployment_state(
            args.deployment, as_of=parse_point(args.as_of) if args.as_of else None
        )
    _print_state(state, args.json)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    with _gateway(args) as gw:
        e = gw.explain_prediction(args.prediction_id, args.key)
    if args.json:
        _print_json(e)
        return 0 if e.reproduced else 1
    verdict = "[green]reproduced[/green]" if e.reproduced else "[red]NOT reproduced[/red]"
    console.print(
        f"prediction {e.prediction_id} on {e.deployment}: recorded {e.recorded_version} "
        f"(bucket {e.recorded_bucket}), recomputed {e.recomputed_version} (bucket {e.recomputed_bucket}): "
        f"{verdict}"
    )
    console.print(f"  state at log position {e.log_position}: routes {_routes_text(e.routes)}")
    if e.changed_position:
        who = e.changed_by or "a caller without a token"
        console.print(f"  put in force by {e.change} at position {e.changed_position}, caused by {who}")
    console.print(f"  {e.reason}")
    if args.key:
        console.print(
            f"  routing key {args.key!r} {'matches' if e.routing_key_matches else 'does NOT match'} "
            "the recorded hash"
        )
    if e.hash_withheld:
        console.print("  the key's hash is shown only with the matching routing key (--key)")
    return 0 if e.reproduced else 1


def cmd_canary(args: argparse.Namespace) -> int:
    with _gateway(args) as gw:
        if args.action == "start":
            steps = [float(x) for x in args.steps.split(",")] if args.steps else []
            state = gw.start_canary(
                args.deployment,
                args.candidate,
                steps=steps,
                metric=args.metric,
                min_samples_per_step=args.min_samples,
                alpha=args.alpha,
                reason=args.reason,
                request_id=args.request_id,
            )
            _print_state(state, args.json)
            c = state.canary
            if not args.json:
                console.print(
                    f"  canary {c.canary_id}: {c.candidate} at {c.steps[0]:g}% against {c.baseline}, "
                    f"steps {', '.join(f'{x:g}' for x in c.steps)}"
                )
            return 0
        status = gw.evaluate_canary(args.deployment)
    if args.json:
        _print_json(status)
    else:
        console.print(f"{status.deployment}: [bold]{status.action}[/bold] - {status.reason}")
    return 0


def cmd_shadow(args: argparse.Namespace) -> int:
    with _gateway(args) as gw:
        results = gw.get_shadow_results(args.deployment)
    if args.json:
        _print_json(results)
        return 0
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
    console.print(table)
    return 0


def cmd_optimizers(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        catalog = opt.list_optimizers()
    if args.json:
        _print_json(catalog)
        return 0
    table = Table(title="optimizers")
    for column in ("optimizer", "needs", "parameters", "what it does"):
        table.add_column(column, overflow="fold")
    for o in catalog.optimizers:
        needs = (
            ", ".join(
                n
                for n, on in (
                    ("valset", o.needs_valset),
                    ("teacher", o.needs_teacher),
                    (f"prompt LM ({o.prompt_lm_role})", o.uses_prompt_lm),
                )
                if on
            )
            or "-"
        )
        params = "; ".join(p.name for p in o.params)
        table.add_row(o.name, needs, params, o.doc)
    console.print(table)
    table = Table(title="presets (dspyops optimize --preset NAME)")
    for column in ("preset", "optimizer", "params", "doc"):
        table.add_column(column, overflow="fold")
    for p in catalog.presets:
        table.add_row(
            p.name, p.optimizer, json.dumps(_dict(p.params)) if p.HasField("params") else "{}", p.doc
        )
    console.print(table)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dspyops.demo import run_demo

    return run_demo(Path(args.workdir) if args.workdir else None)


# ---------------------------------------------------------------- parser


def _lm_from_args(args: argparse.Namespace) -> pb.LMConfig | None:
    if not (args.connection or args.model or args.api_base or args.api_key_env):
        return None
    return pb.LMConfig(
        connection=args.connection, model=args.model, api_base=args.api_base, api_key_env=args.api_key_env
    )


def _add_lm_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--connection",
        default="",
        help="an LM connection of the server (`dspyops connections`); default: offline",
    )
    p.add_argument("--model", default="", help="a model the connection allows, e.g. gpt-4o-mini")
    p.add_argument(
        "--api-base",
        default="",
        help="refused unless the server allows request endpoints (--allow-request-endpoints)",
    )
    p.add_argument(
        "--api-key-env",
        default="",
        help="with --api-base: a key variable the server's connections file names (refused otherwise)",
    )


def cmd_connections(args: argparse.Namespace) -> int:
    if args.ask_gateway:
        with _gateway(args) as gw:
            connections = gw.list_connections()
    else:
        with _optimizer(args) as opt:
            connections = opt.list_connections()
    if args.json:
        for connection in connections:
            _print_json(connection)
        return 0
    table = Table(title=f"LM connections of the {'gateway' if args.ask_gateway else 'optimizer'}")
    for column in (
        "name",
        "provider",
        "endpoint",
        "models",
        "key",
        "max_tokens",
        "temperature",
        "USD/1M in/out",
    ):
        table.add_column(column)
    for c in connections:
        cap = f" (cap {c.max_tokens_cap})" if c.max_tokens_cap else ""
        prices = (
            f"{c.input_usd_per_mtok:g} / {c.output_usd_per_mtok:g}"
            if c.input_usd_per_mtok or c.output_usd_per_mtok
            else "-"
        )
        table.add_row(
            c.name,
            c.provider,
            c.endpoint or "-",
            ", ".join(c.models),
            "set" if c.has_key else "-",
            f"{c.default_max_tokens}{cap}",
            f"{c.min_temperature:g}-{c.max_temperature:g}",
            prices,
        )
    console.print(table)
    return 0


def _add_dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="", help="JSONL file, or a shipped dataset such as support_tickets")
    p.add_argument("--dataset-ref", default="", help="a file under the server's --datasets-dir instead")
    p.add_argument(
        "--metric", default="", help="exact_match (default), f1, contains, rouge_l, module:function"
    )


def _dataset_rows(args: argparse.Namespace) -> list[dict[str, str]]:
    return read_rows(args.dataset) if args.dataset else []


def cmd_evaluate(args: argparse.Namespace) -> int:
    spec, state_json = None, b""
    if args.state:
        if not args.signature:
            raise SystemExit("evaluate: --state needs --signature")
        spec = pb.ProgramSpec(module=args.module, signature=args.signature)
        state_json = Path(args.state).read_bytes()
    with _optimizer(args) as opt:
        report = None
        for event in opt.evaluate(
            args.program or "",
            args.version or "",
            dataset=_dataset_rows(args),
            dataset_ref=args.dataset_ref,
            spec=spec,
            state_json=state_json,
            lm=_lm_from_args(args),
            metric=args.metric,
            num_threads=args.threads,
            include_results=args.results,
        ):
            if args.json:
                _print_json(event)
            elif event.WhichOneof("kind") == "progress":
                p = event.progress
                console.print(f"{p.done}/{p.total} running score {p.running_score:.3f}")
            if event.WhichOneof("kind") == "report":
                report = event.report
    if report is None:
        return 1
    if not args.json:
        _print_report(report)
    return 0


def _print_report(r: pb.EvaluationReport) -> None:
    what = f"{r.program} {r.version}" if r.program else "spec + state"
    console.print(
        f"{what}: {r.metric} {r.score:.4f} on {r.examples} examples (accuracy {r.accuracy:.4f}, "
        f"{r.errors} errors), latency p50 {r.latency_p50_ms:.1f} ms p95 {r.latency_p95_ms:.1f} ms, "
        f"{r.usage.lm_calls} LM calls, {r.usage.input_tokens + r.usage.output_tokens} tokens"
        + (f", ${r.usage.cost_usd:.4f}" if r.usage.cost_usd else "")
    )
    if r.per_class:
        table = Table(
            title=f"per class (macro P {r.macro_precision:.3f} R {r.macro_recall:.3f} F1 {r.macro_f1:.3f})"
        )
        for column in ("label", "precision", "recall", "f1", "support"):
            table.add_column(column)
        for c in r.per_class:
            table.add_row(c.label, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", str(c.support))
        console.print(table)
    if r.results:
        table = Table(title="examples")
        for column in ("inputs", "expected", "predicted", "score", "error"):
            table.add_column(column)
        for x in r.results:
            table.add_row(
                json.dumps(dict(x.inputs)),
                json.dumps(dict(x.expected)),
                json.dumps(dict(x.predicted)),
                f"{x.score:.3f}",
                x.error,
            )
        console.print(table)


def cmd_compare(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        result = opt.compare_versions(
            args.program,
            args.a,
            args.b,
            dataset=_dataset_rows(args),
            dataset_ref=args.dataset_ref,
            metric=args.metric,
        )
    if args.json:
        _print_json(result)
        return 0
    console.print(
        f"{args.program} {result.a}: {result.score_a:.4f}  vs  {result.b}: {result.score_b:.4f} on "
        f"{result.examples} examples; {result.test} p = {result.p_value:.4g} "
        f"(only a: {result.a_only}, only b: {result.b_only}) -> {result.verdict}"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        version = opt.import_program(
            args.program,
            args.signature,
            Path(args.state).read_bytes(),
            module=args.module,
            lm=_lm_from_args(args),
            request_id=args.request_id,
        )
    if args.json:
        _print_json(version)
    else:
        console.print(
            f"imported {version.program} {version.version} (artifact {version.artifact_digest[:12]})"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with _optimizer(args) as opt:
        exported = opt.export_version(args.program, args.version)
    if args.json:
        _print_json(exported)
        return 0
    if args.out:
        Path(args.out).write_bytes(exported.state_json)
        console.print(
            f"wrote {args.out}: dspy.{exported.spec.module}({exported.spec.signature!r}).load(path) reads it"
        )
    else:
        sys.stdout.write(exported.state_json.decode("utf-8") + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dspyops", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--optimizer",
        default=os.environ.get("DSPYOPS_OPTIMIZER", DEFAULT_OPTIMIZER),
        help="optimizer_svc address (env DSPYOPS_OPTIMIZER)",
    )
    parser.add_argument(
        "--gateway",
        default=os.environ.get("DSPYOPS_GATEWAY", DEFAULT_GATEWAY),
        help="gateway_svc address (env DSPYOPS_GATEWAY)",
    )
    parser.add_argument(
        "--token", default=os.environ.get("DSPYOPS_TOKEN", ""), help="bearer token (env DSPYOPS_TOKEN)"
    )
    parser.add_argument("--tls-ca", default="", help="CA bundle to verify the servers (turns TLS on)")
    parser.add_argument(
        "--tls-cert", default="", help="certificate: the client's, or with serve the server's"
    )
    parser.add_argument("--tls-key", default="", help="private key of --tls-cert")
    parser.add_argument(
        "--request-id",
        default="",
        help="the request id a command that changes something sends (default: a fresh one); "
        "after a timeout, rerun with the id the error shows: the server carries it out once",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "serve",
        help="run a service in the foreground (python -m optimizer_svc / gateway_svc; --help after the name)",
        add_help=False,
    )
    p.add_argument("service", choices=["optimizer", "gateway"])
    p.add_argument("service_args", nargs=argparse.REMAINDER, help="the service's own flags")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("optimize", help="run an optimizer as a job and stream its progress")
    p.add_argument("program")
    p.add_argument("--signature", required=True, help='e.g. "text -> label"')
    p.add_argument(
        "--dataset", required=True, help="JSONL file, or a shipped dataset such as support_tickets"
    )
    p.add_argument("--optimizer-name", "-O", default=None, help="default: BootstrapFewShot, or the preset's")
    p.add_argument("--preset", default="", help="a named optimizer + params (see `dspyops optimizers`)")
    p.add_argument(
        "--param", "-p", action="append", default=[], help="optimizer parameter key=value (JSON value)"
    )
    p.add_argument("--metric", default="exact_match")
    p.add_argument("--module", default="Predict", choices=["Predict", "ChainOfThought"])
    p.add_argument("--val-fraction", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    _add_lm_args(p)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max-tokens", type=int, default=0, help="0: the connection's default")
    p.add_argument("--min-score", type=float, default=None)
    p.add_argument("--auto-promote", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("jobs", help="list jobs")
    p.add_argument("--program", default="")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("watch", help="re-attach to a job's event stream")
    p.add_argument("job_id")
    p.add_argument("--after", type=int, default=0, help="skip events up to this sequence number")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("cancel", help="cancel a running job")
    p.add_argument("job_id")
    p.add_argument("--reason", default="cancelled from the CLI")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("programs", help="list registered programs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_programs)

    p = sub.add_parser("versions", help="list a program's versions")
    p.add_argument("program")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_versions)

    p = sub.add_parser("promote", help="set a version's status (default: production)")
    p.add_argument("program")
    p.add_argument("version", help="semver or @alias")
    p.add_argument("--status", default="production", choices=sorted(api.STATUSES))
    p.add_argument("--reason", default="")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("alias", help="point an alias such as @champion at a version")
    p.add_argument("program")
    p.add_argument("alias")
    p.add_argument("version")
    p.set_defaults(func=cmd_alias)

    p = sub.add_parser("deploy", help="create a deployment of a program")
    p.add_argument("deployment")
    p.add_argument("program")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("routes", help="show or set a deployment's routes: VERSION=WEIGHT ...")
    p.add_argument("deployment")
    p.add_argument("routes", nargs="*")
    p.add_argument("--expected-version", type=int, default=None)
    p.add_argument("--reason", default="")
    p.set_defaults(func=cmd_routes)

    p = sub.add_parser("predict", help="call a deployment through the gateway: FIELD=VALUE ...")
    p.add_argument("deployment")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--key", default="", help="routing key (sticky assignment), e.g. a user id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("log", help="read, follow, verify or back up the audit log")
    p.add_argument(
        "action",
        nargs="?",
        choices=["verify", "backup"],
        help="verify: walk the hash chain; backup DEST: a consistent copy of the live log, verified",
    )
    p.add_argument("dest", nargs="?", default="", help="backup: the file to write")
    p.add_argument("--from", dest="from_position", type=int, default=0, help="start after this position")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--stream", default="", help="stream prefix, e.g. program- or job-")
    p.add_argument("--type", default="", help="event types, comma-separated, e.g. RoutesSet,RolledBack")
    p.add_argument("--actor", default="", help="only events caused by this token name (or 'system')")
    p.add_argument("--since", default="", help="ISO time: only events recorded at or after it")
    p.add_argument("--until", default="", help="ISO time: only events recorded at or before it")
    p.add_argument("--follow", "-f", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--log", default="", help="verify/backup: open this log file directly instead of asking the optimizer"
    )
    p.add_argument("--chain-key-file", default="", help="verify/backup --log: the log's chain key")
    p.add_argument("--force", action="store_true", help="backup: overwrite DEST")
    p.add_argument(
        "--predictions", default="", help="backup: the gateway's records file, if not <log>.predictions"
    )
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("outcome", help="record the outcome of a prediction (once)")
    p.add_argument("prediction_id")
    p.add_argument("value", type=float, help="1/0 for binary metrics, a score for continuous ones")
    p.set_defaults(func=cmd_outcome)

    p = sub.add_parser("experiment", help="start an A/B experiment, read its results, conclude or stop it")
    p.add_argument("action", choices=["start", "results", "conclude", "stop"])
    p.add_argument("deployment")
    p.add_argument("--control", default="")
    p.add_argument("--treatment", action="append", default=[])
    p.add_argument("--weights", default="", help="comma-separated, control first (default: equal)")
    p.add_argument("--metric", default="binary", choices=["binary", "continuous"])
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--min-samples", type=int, default=100)
    p.add_argument("--fixed-horizon", action="store_true", help="decide on the fixed-horizon p-value")
    p.add_argument("--hash-version", type=int, default=2)
    p.add_argument("--seed", default="")
    p.add_argument("--coverage", type=float, default=1.0)
    p.add_argument("--keep-control", action="store_true", help="conclude: route everything to the control")
    p.add_argument("--reason", default="")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser(
        "rollback", help="restore a deployment's routes and experiment as of a position or time"
    )
    p.add_argument("deployment")
    p.add_argument("--to", required=True, help="log position or ISO time")
    p.add_argument("--reason", default="")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("state", help="a deployment's state now, or as of a position or time")
    p.add_argument("deployment")
    p.add_argument("--as-of", default="", help="log position or ISO time")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_state)

    p = sub.add_parser("explain", help="what served a prediction, and why (recomputed from the log)")
    p.add_argument("prediction_id")
    p.add_argument("--key", default="", help="also check this routing key against the recorded hash")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("canary", help="start a canary rollout, or check its guardrail now")
    p.add_argument("action", choices=["start", "check"])
    p.add_argument("deployment")
    p.add_argument("--candidate", default="")
    p.add_argument("--steps", default="", help="percents, comma-separated (default 1,5,25,50,100)")
    p.add_argument("--min-samples", type=int, default=100, help="outcomes per arm and step before deciding")
    p.add_argument("--metric", default="binary", choices=["binary", "continuous"])
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--reason", default="")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_canary)

    p = sub.add_parser("shadow", help="how shadow routes compare with the served answers")
    p.add_argument("deployment")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_shadow)

    p = sub.add_parser("connections", help="the LM connections a server has (names, models; never keys)")
    p.add_argument(
        "--gateway", dest="ask_gateway", action="store_true", help="ask the gateway, not the optimizer"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_connections)

    p = sub.add_parser("optimizers", help="the optimizers, their parameters and the named presets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_optimizers)

    p = sub.add_parser("evaluate", help="run a version (or --state) over a dataset: progress, then a report")
    p.add_argument("program", nargs="?", default="")
    p.add_argument("version", nargs="?", default="", help="semver or @alias")
    _add_dataset_args(p)
    p.add_argument("--state", default="", help="a program.save() JSON file to evaluate instead of a version")
    p.add_argument("--signature", default="", help="with --state")
    p.add_argument("--module", default="Predict", choices=["Predict", "ChainOfThought"])
    _add_lm_args(p)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--results", action="store_true", help="per-example results in the report")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="two versions on the same examples, with a paired test")
    p.add_argument("program")
    p.add_argument("a")
    p.add_argument("b")
    _add_dataset_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("import", help="register a state saved by plain DSPy (program.save('x.json'))")
    p.add_argument("program")
    p.add_argument("state", help="the JSON file program.save() wrote")
    p.add_argument("--signature", required=True)
    p.add_argument("--module", default="Predict", choices=["Predict", "ChainOfThought"])
    _add_lm_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="a version's state as JSON that plain DSPy loads with program.load()")
    p.add_argument("program")
    p.add_argument("version")
    p.add_argument("--out", default="", help="write the JSON here (default: stdout)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", help="run the whole loop on a fresh log with the offline LM")
    p.add_argument("--workdir", default="", help="keep the log and artifacts here (default: a temp dir)")
    p.set_defaults(func=cmd_demo)
    return parser


# subcommands whose call changes something (and sends --request-id)
_CHANGES = frozenset(
    {
        "optimize",
        "promote",
        "alias",
        "deploy",
        "routes",
        "outcome",
        "experiment",
        "rollback",
        "canary",
        "import",
    }
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # one id for the call this command makes, so the hint below can name it
    args.request_id = args.request_id or api.new_request_id()
    try:
        return int(args.func(args) or 0)
    except grpc.RpcError as exc:
        code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
        details = exc.details() if hasattr(exc, "details") else str(exc)
        console.print(f"[red]error[/red] {code}: {details}")
        if args.command in _CHANGES and code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"):
            console.print(
                f"  it may have been carried out: rerun with --request-id {args.request_id} to retry "
                "safely (the server answers a repeat with the first result)"
            )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
