"""`dspyops demo` / `make demo`: the whole loop, on a fresh log, with the offline LM.

Starts both services as real subprocesses on free loopback ports, optimizes the shipped
support-ticket dataset with BootstrapFewShot and MIPROv2 (streamed progress), compares
baseline and optimized scores, registers and promotes the better version, deploys a 90/10
split, sends predictions through the gateway, runs an A/B experiment and rolls back; then a
two-stage program (retrieve the help-centre article, then classify: dspyops.demo_pipeline)
optimized, deployed, served with traces and explained; prints the audit log, verifies the
hash chain, and stops everything.
"""

from __future__ import annotations

import collections
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
from rich.rule import Rule
from rich.table import Table

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.datasets import example_row, load_dataset, split
from dspyops.demo_pipeline import multi_stage
from dspyops.launch import ServiceProcess
from dspyops.proto import events_pb2 as pb
from dspyops.render.console import console
from dspyops.render.events import log_table
from dspyops.render.experiments import results_table
from dspyops.render.jobs import render_job_events, scores_table

PROGRAM = "ticket-router"
DEPLOYMENT = "support-web"
SIGNATURE = "text -> label"
VAL_FRACTION, SPLIT_SEED = 0.35, 4  # the optimizer splits the tickets with these


@contextlib.contextmanager
def services(workdir: Path) -> Iterator[tuple[ServiceProcess, ServiceProcess, ServiceProcess]]:
    env = dict(os.environ)
    env.setdefault("DSPY_CACHEDIR", str(workdir / "dspy_cache"))
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("DSPYOPS_LOG_LEVEL", "warning")
    log = str(workdir / "dspyops.db")
    started: list[ServiceProcess] = []
    try:
        # --create: the demo starts a log of its own, even in a --workdir that held one before
        optimizer = ServiceProcess(
            "optimizer",
            ["optimizer", "--log", log, "--data-dir", str(workdir / "data"), "--create"],
            workdir,
            env,
        )
        started.append(optimizer)
        gateway = ServiceProcess("gateway", ["gateway", "--log", log], workdir, env)
        started.append(gateway)
        second = ServiceProcess("gateway-2", ["gateway", "--log", log], workdir, env)
        started.append(second)
        yield optimizer, gateway, second
    finally:
        for service in reversed(started):
            service.stop()


def _optimize(
    opt: OptimizerClient, optimizer: str, params: dict[str, object], rows: list[dict[str, str]], n_val: int
) -> pb.JobCompleted:
    console.print(Rule(f"{optimizer} on {len(rows) - n_val} training / {n_val} validation tickets"))
    events = opt.start_optimization(
        PROGRAM,
        SIGNATURE,
        trainset=rows,  # all of them: the server splits off the validation share
        val_fraction=VAL_FRACTION,
        split_seed=SPLIT_SEED,
        optimizer=optimizer,
        params=params,
        metric="exact_match",
    )
    last = render_job_events(events, as_json=False)
    if last is None or last.WhichOneof("kind") != "completed":
        raise RuntimeError(f"{optimizer} did not complete: {last}")
    return last.completed


def _wait_applied(gateway: GatewayClient, position: int, timeout: float = 5.0) -> float:
    """Milliseconds until this gateway serves from log position >= position. A gateway whose
    tail has not reached the deployment yet answers NOT_FOUND: that is "not yet" too."""
    started = time.perf_counter()
    while _position_of(gateway) < position:
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"gateway did not reach log position {position} within {timeout} s")
        time.sleep(0.001)
    return (time.perf_counter() - started) * 1000


def _position_of(gateway: GatewayClient) -> int:
    try:
        return gateway.get_deployment_state(DEPLOYMENT).log_position
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return 0


def experiment_and_rollback(
    opt: OptimizerClient, gateways: list[GatewayClient], valset: list[dict[str, str]], better: str, worse: str
) -> bool:
    """A/B test worse (control) vs better (treatment) on live traffic through two gateways,
    with outcomes scored against the labels; conclude; explain; roll back to before it."""
    console.print(Rule("A/B experiment on live traffic (two gateway processes)"))
    before = datetime.now(UTC)
    time.sleep(0.01)
    gw = gateways[0]
    state = gw.start_experiment(
        DEPLOYMENT,
        worse,
        [better],
        metric="binary",
        min_samples_per_arm=50,
        sequential=True,
        reason="does the MIPROv2 version win on live traffic?",
    )
    for other in gateways[1:]:
        _wait_applied(other, state.log_position)
    predictions = []
    results = None
    for batch in range(20):
        for i in range(batch * 50, (batch + 1) * 50):
            row = valset[i % len(valset)]
            serving = gateways[i % len(gateways)]
            response = serving.predict(DEPLOYMENT, {"text": row["text"]}, routing_key=f"visitor-{i}")
            correct = response.outputs["label"].strip().lower() == row["label"].lower()
            serving.record_outcome(response.prediction_id, float(correct))
            predictions.append((f"visitor-{i}", response))
        results = gw.get_experiment_results(DEPLOYMENT)
        if results.decision != "keep_running":
            break
    assert results is not None
    console.print(results_table(results))
    console.print(
        f"decision after {len(predictions)} predictions: [bold]{results.decision}[/bold] - {results.reason}"
    )
    if results.decision != "treatment_better":
        console.print("[red]the experiment did not find the better version[/red]")
        return False
    sample = predictions[:: max(1, len(predictions) // 25)]
    reproduced = sum(gw.explain_prediction(r.prediction_id, routing_key=key).reproduced for key, r in sample)
    console.print(f"explain: {reproduced} of {len(sample)} sampled decisions recomputed from the log exactly")
    concluded = gw.conclude_experiment(DEPLOYMENT, promote_winner=True, reason="treatment wins")
    console.print(f"concluded: {concluded.deployment} now routes {concluded.routes[0].version} 100%")
    rolled = gw.rollback(DEPLOYMENT, before, reason="roll back to before the experiment")
    waits = [_wait_applied(g, rolled.log_position) for g in gateways]
    console.print(
        f"rolled back to {before.isoformat(timespec='milliseconds')}: routes "
        + ", ".join(f"{r.version} {r.weight:.0%}" for r in rolled.routes)
        + "; visible on both gateways after "
        + " and ".join(f"{w:.1f} ms" for w in waits)
    )
    return reproduced == len(sample)


def run_demo(workdir: Path | None = None) -> int:
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dspyops-demo-")))
        workdir.mkdir(parents=True, exist_ok=True)
        examples = load_dataset("support_tickets")
        rows = [example_row(example) for example in examples]
        # the same split the optimizer makes (dspyops.datasets.split, same seed): the
        # validation tickets are the traffic and the outcomes below
        valset = [example_row(example) for example in split(examples, VAL_FRACTION, SPLIT_SEED)[1]]
        console.print(
            f"[bold]dspyops demo[/bold]: log {workdir / 'dspyops.db'}, offline LM, "
            f"{len(rows)} support tickets -> {SIGNATURE!r}"
        )
        optimizer_svc, gateway_svc, second_svc = stack.enter_context(services(workdir))
        console.print(
            f"optimizer_svc on {optimizer_svc.address}, gateway_svc on {gateway_svc.address} "
            f"and {second_svc.address}"
        )
        opt = stack.enter_context(OptimizerClient(optimizer_svc.address))
        gw = stack.enter_context(GatewayClient(gateway_svc.address))
        gw2 = stack.enter_context(GatewayClient(second_svc.address))

        runs: list[tuple[str, dict[str, object]]] = [
            ("BootstrapFewShot", {"max_bootstrapped_demos": 4, "max_labeled_demos": 8}),
            (
                "MIPROv2",
                {"auto": "light", "max_bootstrapped_demos": 4, "max_labeled_demos": 8, "num_threads": 1},
            ),
        ]
        results = [(name, _optimize(opt, name, params, rows, len(valset))) for name, params in runs]

        table = scores_table("baseline vs optimized (exact match on the validation split)", results)
        console.print(table)
        if any(done.final_score <= done.baseline_score for _, done in results):
            console.print("[red]an optimized program did not beat its baseline[/red]")
            return 1

        best = max(results, key=lambda r: r[1].final_score)[1]
        other = next(done for _, done in results if done.version != best.version)
        console.print(Rule("registry and deployment"))
        opt.set_version_status(
            PROGRAM, best.version, "production", reason="best validation score in the demo"
        )
        opt.set_alias(PROGRAM, "champion", best.version)
        opt.create_deployment(DEPLOYMENT, PROGRAM)
        deployment = opt.set_routes(
            DEPLOYMENT, {best.version: 0.9, other.version: 0.1}, reason="90/10 split: champion and challenger"
        )
        routes_set = time.perf_counter()
        console.print(
            f"{PROGRAM} {best.version} promoted to production (@champion); deployment {DEPLOYMENT}: "
            + ", ".join(f"{r.version} {r.weight:.0%}" for r in deployment.routes)
        )

        console.print(Rule("predictions through the gateway (sticky per user)"))
        # the gateway tails the log: wait until it has applied the routes we just set
        deadline = time.monotonic() + 5
        while gw.get_deployment_state(DEPLOYMENT).log_position < deployment.log_position:
            if time.monotonic() > deadline:
                raise TimeoutError("gateway did not apply the routes within 5 s")
            time.sleep(0.001)
        applied_ms = (time.perf_counter() - routes_set) * 1000
        console.print(f"the gateway applied the new routes {applied_ms:.1f} ms after SetRoutes returned")
        table = Table(title="predictions")
        for column in ("user", "ticket", "predicted", "expected", "version"):
            table.add_column(column, overflow="fold")
        served: collections.Counter[str] = collections.Counter()
        correct: collections.Counter[str] = collections.Counter()
        for i, row in enumerate(valset * 2):
            response = gw.predict(DEPLOYMENT, {"text": row["text"]}, routing_key=f"user-{i}")
            served[response.version] += 1
            correct[response.version] += response.outputs["label"].strip().lower() == row["label"].lower()
            if i < 12:
                table.add_row(
                    f"user-{i}", row["text"][:48], response.outputs["label"], row["label"], response.version
                )
        again = gw.predict(DEPLOYMENT, {"text": valset[0]["text"]}, routing_key="user-0")
        console.print(table)
        for version, count in sorted(served.items()):
            console.print(
                f"  {version}: served {count} of {sum(served.values())} requests, "
                f"{correct[version] / count:.0%} correct"
            )
        console.print(f"  user-0 asked again: served by {again.version} again (sticky)")

        if not experiment_and_rollback(opt, [gw, gw2], valset, best.version, other.version):
            return 1
        if not multi_stage(opt, gw, rows, valset, VAL_FRACTION, SPLIT_SEED):
            return 1

        console.print(Rule("audit log"))
        page = opt.read_log(0, 1000, "")
        console.print(log_table(page.events, title=f"audit log ({page.head} events)"))
        verified = opt.verify_log()
        console.print(f"hash chain: {'intact' if verified.ok else 'BROKEN'} over {verified.checked} events")
        if not verified.ok:
            return 1
    console.print(f"[bold green]demo finished in {time.monotonic() - started:.1f} s[/bold green]")
    return 0
