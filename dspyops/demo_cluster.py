"""`make demo-cluster` (`python -m dspyops.demo_cluster`): the loop on a cluster of one machine.

A throwaway PostgreSQL holds the log; a local Ray cluster (`ray start --head`, its own
temporary directory) runs the jobs; two optimizer replicas (`--executor ray --ray-address
<the head>`) and two gateways share the one log URL (dspyops.localcluster starts them).
Through the Python client: optimize on both replicas, register and deploy an A/B split,
predict through both gateways (sticky per user: the same user gets the same version from
either gateway), report outcomes and read the statistics; then start a job on optimizer-1,
kill -9 it mid-run and show what the record says happens next: optimizer-2 claims the job
once optimizer-1's lease expires and finishes it, replaying the LM calls already paid for.
The hash chain is verified with `dspyops log verify`; everything is stopped (on failure
too) and the temporary directory removed. Exit status 0 when every step did what it shows.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
from rich.rule import Rule
from rich.table import Table

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.datasets import example_row, load_dataset, split
from dspyops.demo import DEPLOYMENT, PROGRAM, SIGNATURE, SPLIT_SEED, VAL_FRACTION
from dspyops.eventlog import log_name
from dspyops.localcluster import LocalCluster
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.console import console
from dspyops.render.events import describe_event
from dspyops.render.experiments import results_table
from dspyops.render.jobs import job_state, render_job_events, scores_table

OPTIMIZERS = ("optimizer-1", "optimizer-2")
GATEWAYS = ("gateway-1", "gateway-2")
LEASE_SECONDS = 3  # short, so the takeover shows within seconds of the kill
MAX_ATTEMPTS = 3
# the job killed mid-run: enough candidate programs that it is still running when killed
KILLED_JOB = ("BootstrapFewShotWithRandomSearch", {"num_candidate_programs": 16, "num_threads": 1})
KILL_AFTER_TRIALS = 3
# the demo's two optimizations, one on each replica
RUNS: tuple[tuple[str, dict[str, object]], ...] = (
    ("BootstrapFewShot", {"max_bootstrapped_demos": 4, "max_labeled_demos": 8}),
    ("MIPROv2", {"auto": "light", "max_bootstrapped_demos": 4, "max_labeled_demos": 8, "num_threads": 1}),
)
PREDICTIONS = 400  # in the experiment, alternating between the gateways
TERMINAL = {"job_completed", "job_failed", "job_cancelled", "job_interrupted"}


def claims_supported() -> bool:
    """Whether this build's optimizer takes jobs over (it has the job-claim flags)."""
    shown = subprocess.run(
        [sys.executable, "-m", "optimizer_svc", "--help"], capture_output=True, text=True, timeout=120
    )
    return "--job-lease-seconds" in shown.stdout


def start_cluster(cluster: LocalCluster, claims: bool) -> None:
    console.print(Rule("the cluster: PostgreSQL, Ray, two optimizers, two gateways"))
    t0 = time.perf_counter()
    url = cluster.start_postgres()
    console.print(f"PostgreSQL: {log_name(url)} ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    ray = cluster.start_ray()
    console.print(
        f"Ray head: {ray.address}, pid {ray.pid}, files in {ray.temp_dir} ({time.perf_counter() - t0:.1f} s)"
    )
    flags = (
        ["--job-max-attempts", str(MAX_ATTEMPTS), "--job-lease-seconds", str(LEASE_SECONDS)] if claims else []
    )
    flags += ["--ray-job-cpus", "0.5"]
    table = Table(title="processes")
    for column in ("name", "pid", "address", "flags"):
        table.add_column(column, overflow="fold")
    table.add_row("ray head", str(ray.pid), ray.address, "ray start --head --num-cpus 2")
    for name in OPTIMIZERS:
        service = cluster.start_optimizer(name, *flags)
        table.add_row(
            name,
            str(service.pid),
            service.address,
            f"--log URL --executor ray --ray-address {ray.address} " + " ".join(flags),
        )
    for name in GATEWAYS:
        service = cluster.start_gateway(name)
        table.add_row(name, str(service.pid), service.address, "--log URL")
    console.print(table)


def _optimize(
    opt: OptimizerClient, where: str, optimizer: str, params: dict[str, object], rows: list[dict[str, str]]
) -> pb.JobCompleted:
    console.print(Rule(f"{optimizer} on {where}"))
    events = opt.start_optimization(
        PROGRAM, SIGNATURE, trainset=rows, val_fraction=VAL_FRACTION, split_seed=SPLIT_SEED,
        optimizer=optimizer, params=params, metric="exact_match",
    )  # fmt: skip
    last = render_job_events(events, as_json=False)
    if last is None or last.WhichOneof("kind") != "completed":
        raise RuntimeError(f"{optimizer} on {where} did not complete: {last}")
    return last.completed


def _applied(gateway: GatewayClient) -> int:
    """The log position this gateway serves the deployment from (0: it has not seen it yet)."""
    try:
        return gateway.get_deployment_state(DEPLOYMENT).log_position
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return 0
        raise


def _wait_applied(gateway: GatewayClient, position: int, timeout: float = 10.0) -> float:
    """Milliseconds until this gateway serves from log position >= position."""
    started = time.perf_counter()
    while _applied(gateway) < position:
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"a gateway did not reach log position {position} within {timeout} s")
        time.sleep(0.002)
    return (time.perf_counter() - started) * 1000


def serve_split(
    opts: list[OptimizerClient], gws: list[GatewayClient], valset: list[dict[str, str]], best: str, other: str
) -> bool:
    """Register on one replica, deploy a 50/50 split on the other; every user asks both
    gateways and gets the same version from each."""
    console.print(Rule("registry and an A/B split, written through both replicas"))
    opts[0].set_version_status(PROGRAM, best, "production", reason="best validation score in the demo")
    opts[1].set_alias(PROGRAM, "champion", best)
    opts[0].create_deployment(DEPLOYMENT, PROGRAM)
    routes = opts[1].set_routes(DEPLOYMENT, {best: 0.5, other: 0.5}, reason="A/B: champion and challenger")
    waits = [_wait_applied(gw, routes.log_position) for gw in gws]
    console.print(
        f"{PROGRAM} {best} production (on optimizer-1), @champion (on optimizer-2); {DEPLOYMENT}: "
        + ", ".join(f"{r.version} {r.weight:.0%}" for r in routes.routes)
        + " (on optimizer-2); applied by the gateways after "
        + " and ".join(f"{w:.1f} ms" for w in waits)
    )
    console.print(Rule("predictions through both gateways (sticky per user)"))
    table = Table(title="the same user on both gateways")
    for column in ("user", "ticket", "gateway-1", "gateway-2", "label"):
        table.add_column(column, overflow="fold")
    served: collections.Counter[str] = collections.Counter()
    same = 0
    for i, row in enumerate(valset):
        first, second = (gw.predict(DEPLOYMENT, {"text": row["text"]}, routing_key=f"user-{i}") for gw in gws)
        served[first.version] += 1
        same += first.version == second.version
        if i < 8:
            table.add_row(
                f"user-{i}", row["text"][:40], first.version, second.version, first.outputs["label"]
            )
    console.print(table)
    console.print(
        f"{same} of {len(valset)} users got the same version from both gateways; split served: "
        + ", ".join(f"{v} {n}" for v, n in sorted(served.items()))
    )
    return same == len(valset)


def experiment(gws: list[GatewayClient], valset: list[dict[str, str]], best: str, other: str) -> bool:
    """An A/B experiment: each outcome is reported to the other gateway than the one that
    served the prediction, and both count every outcome (the records are tables in the
    log's database, shared by every gateway)."""
    console.print(Rule("outcomes and statistics (an experiment across both gateways)"))
    state = gws[0].start_experiment(
        DEPLOYMENT, other, [best], metric="binary", min_samples_per_arm=40, sequential=True,
        reason="does the champion win on live traffic?",
    )  # fmt: skip
    _wait_applied(gws[1], state.log_position)
    for i in range(PREDICTIONS):
        row = valset[i % len(valset)]
        gw = gws[i % 2]
        response = gw.predict(DEPLOYMENT, {"text": row["text"]}, routing_key=f"visitor-{i}")
        correct = response.outputs["label"].strip().lower() == row["label"].lower()
        gws[(i + 1) % 2].record_outcome(response.prediction_id, float(correct))
    counts = []
    for name, gw in zip(GATEWAYS, gws, strict=True):
        results = gw.get_experiment_results(DEPLOYMENT)
        table = results_table(results)
        table.title = f"{name}: every gateway's predictions and outcomes"
        console.print(table)
        console.print(f"{name}: [bold]{results.decision}[/bold] - {results.reason}")
        counts.append(sum(arm.n for arm in results.arms))
    counted = min(counts)
    console.print(
        f"{counted} of {PREDICTIONS} outcomes counted on each gateway, each reported to the other "
        "gateway than the one that served it: the records are tables in the log's database"
    )
    stopped = gws[1].stop_experiment(DEPLOYMENT, reason="demo: seen enough")
    _wait_applied(gws[0], stopped.log_position)
    return counted == PREDICTIONS


def _job_events(opt: OptimizerClient, job_id: str) -> list[pb.Event]:
    return list(opt.read_log(0, 1000, f"job-{job_id}").events)


def _owner_name(owner: str, pids: dict[int, str]) -> str:
    parts = owner.split("/")
    pid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
    return pids.get(pid, owner)


def kill_during_job(
    cluster: LocalCluster, opts: list[OptimizerClient], rows: list[dict[str, str]], claims: bool
) -> bool:
    """Start a job through optimizer-1, kill -9 the replica that runs it once it is mid-run,
    and follow the job to its end through the replica left."""
    name, params = KILLED_JOB
    console.print(Rule(f"kill -9 the optimizer running a job ({name})"))
    pids = {cluster.services[n].pid: n for n in OPTIMIZERS}
    clients = dict(zip(OPTIMIZERS, opts, strict=True))
    events: Iterator[opb.OptimizationEvent] = opts[0].start_optimization(
        PROGRAM, SIGNATURE, trainset=rows, val_fraction=VAL_FRACTION, split_seed=SPLIT_SEED,
        optimizer=name, params=params, metric="exact_match",
    )  # fmt: skip
    watched, job_id, owner, victim, trials, killed_at, seen = OPTIMIZERS[0], "", "", "", 0, 0.0, 0
    while True:
        try:
            for event in events:
                seen = max(seen, event.stream_version)
                kind = event.WhichOneof("kind")
                if kind == "accepted":
                    job_id = event.accepted.job_id
                    console.print(f"  job {job_id} accepted by {watched}")
                elif kind == "claimed":
                    owner = _owner_name(event.claimed.owner, pids)
                    console.print(f"  claimed by {owner} (attempt {event.claimed.attempt})")
                elif kind == "retried":
                    console.print(
                        f"  [bold]retry, attempt {event.retried.attempt}[/bold]: {event.retried.reason}"
                    )
                elif kind == "baseline":
                    console.print(f"  baseline score {event.baseline.score:.3f}")
                elif kind == "trial":
                    console.print(f"  trial {event.trial.trial}: score {event.trial.score:.3f}")
                    trials += 1
                    if not killed_at and trials >= KILL_AFTER_TRIALS:
                        if not owner:  # the stream did not name the owner: the record does
                            job = clients[watched].get_job(job_id)
                            owner = (_owner_name(job.owner, pids) if claims else "") or watched
                        victim, killed_at = owner, time.time()
                        pid = cluster.kill(victim)
                        console.print(
                            f"  [bold red]kill -9 {pid}[/bold red] ({victim}) after trial {event.trial.trial}"
                        )
                elif kind in ("completed", "failed", "cancelled", "interrupted"):
                    console.print(
                        f"  {kind}" + ("" if killed_at else ": [red]before it could be killed[/red]")
                    )
                    break
            break
        except grpc.RpcError as exc:
            console.print(f"  the watch on {watched} ended: {exc.code().name}")
            if not killed_at or watched != victim or not claims:
                break
            watched = next(n for n in OPTIMIZERS if n != victim)
            console.print(
                f"  the watch goes on at {watched} after stream version {seen} "
                f"(lease {LEASE_SECONDS} s, up to {MAX_ATTEMPTS} attempts):"
            )
            events = clients[watched].watch_job(job_id, after_stream_version=seen, timeout=240)
    if not killed_at or not job_id:
        console.print("[red]the job ended before the kill[/red]")
        return False
    survivor = next(n for n in OPTIMIZERS if n != victim)
    if not claims:
        return _interrupted(cluster, clients[survivor], job_id, victim)
    return _taken_over(clients[survivor], job_id, killed_at, pids, survivor)


def _job_table(events: list[pb.Event], job_id: str, pids: dict[int, str]) -> Table:
    table = Table(title=f"job-{job_id} on the log")
    for column in ("version", "recorded", "event"):
        table.add_column(column, overflow="fold")
    for e in events:
        kind = e.payload.WhichOneof("kind")
        if kind in ("job_progress", "trial_completed") and len(events) > 24:
            continue  # the trials of both attempts: the table keeps the lifecycle
        text = describe_event(e)
        if kind == "job_claimed":
            text = f"{text} ({_owner_name(e.payload.job_claimed.owner, pids)})"
        table.add_row(str(e.version), e.recorded_at.ToDatetime().strftime("%H:%M:%S.%f")[:-3], text)
    return table


def _taken_over(
    opt: OptimizerClient, job_id: str, killed_at: float, pids: dict[int, str], survivor: str
) -> bool:
    """What the log holds: the survivor's claim after the kill and the JobCompleted."""
    deadline = time.monotonic() + 60
    events = _job_events(opt, job_id)
    while not any(e.payload.WhichOneof("kind") in TERMINAL for e in events) and time.monotonic() < deadline:
        time.sleep(0.2)
        events = _job_events(opt, job_id)
    console.print(_job_table(events, job_id, pids))
    claims = [e for e in events if e.payload.WhichOneof("kind") == "job_claimed"]
    completed = [e.payload.job_completed for e in events if e.payload.WhichOneof("kind") == "job_completed"]
    last_claim = claims[-1] if claims else None
    if (
        not completed
        or len(claims) < 2
        or last_claim is None
        or _owner_name(last_claim.payload.job_claimed.owner, pids) != survivor
    ):
        last = events[-1].payload.WhichOneof("kind") if events else "nothing"
        console.print(f"[red]{survivor} did not finish the job (the last event: {last})[/red]")
        return False
    usage = completed[0].usage
    took = last_claim.recorded_at.ToMicroseconds() / 1e6 - killed_at
    console.print(
        f"{survivor} claimed the job {took:.1f} s after the kill and completed it: version "
        f"{completed[0].version}, score {completed[0].final_score:.3f}"
    )
    console.print(
        f"the retry replayed {usage.replayed_lm_calls} LM calls from the job's cache "
        f"(answers the killed attempt had paid for, and repeats of a request within the run) "
        f"and paid for {usage.lm_calls}"
    )
    return True


def _interrupted(cluster: LocalCluster, opt: OptimizerClient, job_id: str, victim: str) -> bool:
    """This build has no job claims: nobody takes the job over. Say so, then restart the
    killed replica, whose start interrupts the job its dead process left running."""
    time.sleep(LEASE_SECONDS)
    job = opt.get_job(job_id)
    console.print(
        f"  [yellow]this build's optimizers do not take jobs over (no job claims yet)[/yellow]: "
        f"{LEASE_SECONDS} s after the kill, the other replica reports the job as {job_state(job.state)}"
    )
    cluster.services.pop(victim)
    cluster.start_optimizer(victim, "--ray-job-cpus", "0.5")
    events = _job_events(opt, job_id)
    last = events[-1] if events else None
    console.print(f"  {victim} restarted; the job's last event: {describe_event(last) if last else 'none'}")
    return last is not None and last.payload.WhichOneof("kind") == "job_interrupted"


def verify(cluster: LocalCluster) -> bool:
    console.print(Rule("the hash chain"))
    command = [sys.executable, "-m", "dspyops.cli", "log", "verify", "--log", cluster.url]
    done = subprocess.run(command, capture_output=True, text=True, env=cluster.env, timeout=300)
    console.print(f"$ dspyops log verify --log {log_name(cluster.url)}")
    console.print((done.stdout + done.stderr).strip())
    return done.returncode == 0


def run_demo_cluster() -> int:
    started = time.monotonic()
    examples = load_dataset("support_tickets")
    rows = [example_row(example) for example in examples]
    valset = [example_row(example) for example in split(examples, VAL_FRACTION, SPLIT_SEED)[1]]
    console.print(
        f"[bold]dspyops demo-cluster[/bold]: offline LM, {len(rows)} support tickets -> {SIGNATURE!r}"
    )
    claims = claims_supported()
    ok = False
    with LocalCluster.create() as cluster:
        try:
            start_cluster(cluster, claims)
            addresses = [cluster.services[n].address for n in (*OPTIMIZERS, *GATEWAYS)]
            opts = [OptimizerClient(a, timeout=300) for a in addresses[:2]]
            gws = [GatewayClient(a) for a in addresses[2:]]
            try:
                results = [
                    (name, _optimize(opts[i], OPTIMIZERS[i], name, params, rows))
                    for i, (name, params) in enumerate(RUNS)
                ]
                console.print(
                    scores_table("baseline vs optimized (exact match on the validation split)", results)
                )
                best = max(results, key=lambda r: r[1].final_score)[1].version
                other = next(done.version for _, done in results if done.version != best)
                ok = (
                    all(done.final_score > done.baseline_score for _, done in results)
                    and serve_split(opts, gws, valset, best, other)
                    and experiment(gws, valset, best, other)
                    and kill_during_job(cluster, opts, rows, claims)
                )
            finally:
                for client in (*opts, *gws):
                    client.close()
            ok = verify(cluster) and ok
            console.print(Rule("stopping everything"))
            t0 = time.perf_counter()
            cluster.stop_services()
            console.print(f"optimizers and gateways stopped (SIGTERM) in {time.perf_counter() - t0:.1f} s")
        except Exception as exc:
            console.print(f"[red]demo-cluster failed: {type(exc).__name__}: {exc}[/red]")
            for name in cluster.services:
                tail = cluster.service_log(name).strip().splitlines()[-5:]
                console.print(f"[red]{name}'s last log lines:[/red]\n" + "\n".join(tail))
            ok = False
    console.print(
        f"Ray and PostgreSQL stopped; {len(cluster.leftovers)} processes were left to kill; "
        f"{cluster.root} {'still exists' if cluster.root.exists() else 'removed'}"
    )
    ok = ok and not cluster.leftovers and not cluster.root.exists()
    verdict = "[bold green]demo-cluster finished" if ok else "[bold red]demo-cluster FAILED"
    console.print(f"{verdict} in {time.monotonic() - started:.1f} s[/]")
    return 0 if ok else 1


def main() -> int:
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C: the cluster is stopped and removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return run_demo_cluster()


if __name__ == "__main__":
    sys.exit(main())
