"""Benchmark: optimization jobs per minute with 1, 2 and 4 optimizer replicas on one
PostgreSQL log, every job a Ray task on one Ray cluster, with a 200 ms offline LM (every
call sleeps 200 ms: a remote model's latency, no CPU).

A throwaway PostgreSQL and a Ray head (`ray start --head --num-cpus 16`, dspyops.localcluster)
serve every configuration; each configuration gets a database of its own. The replicas are
optimizer servers in this process (they share its one Ray driver connection: the LM
latency is a server-side setting of the offline engine, which no request can ask for), each
with `--max-jobs 4` and one CPU reserved per job, so N replicas run up to 4N jobs at once
on the cluster's 16 slots (16 CPUs also keep 16 idle workers warm: Ray's soft limit). The
job is bench_jobs_ray's (LabeledFewShot k=4: a baseline and a final evaluation of 20
examples, 4 threads). 4N jobs are in flight, after 4N warm-up jobs that give the slots warm
Ray workers (a cold one imports DSPy), in two ways: `round-robin` (job k submitted to
replica k % N and watched there) and `one` (every job submitted to replica 0 and watched
there; the other replicas claim the jobs it has no free slot for), 3 times each (the
median counts: the machine is shared). Printed: jobs/min, the ratio against 1 replica in
the same run, how many jobs each replica ran (the owner of each job's last JobClaimed), and
the CPU seconds this process and the cluster's processes used per job. On one 2-core
machine what scales is how many LM waits overlap, not CPU.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import statistics
import threading
import time
from pathlib import Path

# litellm's bundled prices, not a fetch over the network (read when litellm is imported)
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bench import common
from bench.bench_jobs_ray import LATENCY_MS, the_job
from dspyops.client import OptimizerClient
from dspyops.localcluster import LocalCluster, processes_under
from optimizer_svc.server import OptimizerConfig, start

REPLICAS = (1, 2, 4)
AT_ONCE = 4  # --max-jobs of each replica
JOB_CPUS = 1.0
MODES = ("round-robin", "one")  # where jobs are submitted (run_jobs)
RAY_CPUS = 16  # 16 one-CPU slots: 4 replicas x AT_ONCE jobs at once (and 16 workers kept warm)


def run_jobs(
    servers: list[common.ServerThread], clients: list[OptimizerClient], n: int, mode: str
) -> tuple[float, collections.Counter[int]]:
    """Wall seconds for `n` jobs, AT_ONCE per replica in flight, and how many each replica
    ran (the owner of the job's last JobClaimed: a finished job has no owner any more).
    `mode` "round-robin": job k is submitted to replica k % N and watched there; "one":
    every job is submitted to replica 0 and watched there, and the others claim what it
    has no slot for."""
    job = the_job()
    todo = iter(range(n))
    lock = threading.Lock()
    failures: list[str] = []
    owners = {server.running.jobs.owner: i for i, server in enumerate(servers)}
    ran: collections.Counter[int] = collections.Counter()

    def worker(replica: int) -> None:
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            handle = servers[replica].running.jobs.submit(job)
            last = list(clients[replica].watch_job(handle.job_id))[-1]
            if last.WhichOneof("kind") != "completed":
                failures.append(str(last))
            page = clients[replica].read_log(0, 1000, f"job-{handle.job_id}", types=["JobClaimed"])
            owner = page.events[-1].payload.job_claimed.owner if page.events else ""
            with lock:
                ran[owners.get(owner, -1)] += 1

    # AT_ONCE workers per replica; round-robin binds each to a replica in turn
    slots = [r for _, r in itertools.product(range(AT_ONCE), range(len(servers)))]
    targets = slots if mode == "round-robin" else [0] * len(slots)
    threads = [threading.Thread(target=worker, args=(r,)) for r in targets]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{len(failures)} jobs did not complete: {failures[0]}")
    return elapsed, ran


def cluster_cpu_seconds(root: Path) -> float:
    """CPU seconds used so far by this process and every process of the cluster (the Ray
    workers, raylet, GCS; PostgreSQL's backends name their data directory only in the
    postmaster, so the server counts through its postmaster alone)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = sum(os.times()[:2])
    for pid in processes_under(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("jobs_replicas", args.quick)
    per_replica = 2 if args.quick else 8  # jobs per replica in each timed run
    repeats = 1 if args.quick else 3
    logging.getLogger("dspy").setLevel(logging.ERROR)
    load_start = common.loadavg()
    per_minute: dict[str, float] = {}
    walls: dict[str, float] = {}  # the median of the repeats
    all_walls: dict[str, list[float]] = {}
    jobs: dict[str, int] = {}
    cpu: dict[str, float] = {}  # CPU seconds of this process and the cluster's, in the timed run
    spread: dict[str, list[int]] = {}  # jobs each replica ran
    with LocalCluster.create(prefix="dspyops-bjr-") as cluster:
        cluster.start_postgres()
        ray = cluster.start_ray(cpus=RAY_CPUS)
        assert cluster.postgres is not None
        for n in REPLICAS:
            url = cluster.postgres.url(cluster.postgres.create_database())
            servers: list[common.ServerThread] = []
            try:
                for i in range(n):
                    config = OptimizerConfig(
                        log=url,
                        data_dir=cluster.root / f"replicas-{n}" / str(i),
                        max_jobs=AT_ONCE,
                        executor="ray",
                        ray_address=ray.address,
                        ray_job_cpus=JOB_CPUS,
                    )
                    servers.append(common.ServerThread(lambda config=config: start(config)))  # type: ignore[misc]
                clients = [OptimizerClient(s.address, timeout=600) for s in servers]
                try:
                    warm, _ = run_jobs(servers, clients, AT_ONCE * n, "round-robin")
                    for mode in MODES if n > 1 else MODES[:1]:  # one replica: the modes are one
                        key = f"{mode}/{n}"
                        jobs[key] = per_replica * n
                        runs: list[float] = []
                        ran: collections.Counter[int] = collections.Counter()
                        cpu0 = cluster_cpu_seconds(cluster.root)
                        for _ in range(repeats):  # the median: the machine is shared
                            wall, counted = run_jobs(servers, clients, jobs[key], mode)
                            runs.append(wall)
                            ran.update(counted)
                        cpu[key] = (cluster_cpu_seconds(cluster.root) - cpu0) / repeats
                        walls[key] = statistics.median(runs)
                        all_walls[key] = runs
                        spread[key] = [ran[i] for i in range(n)]
                        per_minute[key] = 60.0 * jobs[key] / walls[key]
                        ratio = per_minute[key] / per_minute[f"{MODES[0]}/1"]
                        print(
                            f"  {n} replica{'s' if n > 1 else ' '} {mode:11s} {jobs[key]:3d} jobs in "
                            f"{walls[key]:6.2f} s (median of {'/'.join(f'{w:.2f}' for w in runs)}) = "
                            f"{per_minute[key]:6.1f} jobs/min  ratio vs 1 replica "
                            f"{ratio:.2f}  (ran {'/'.join(map(str, spread[key]))}; {AT_ONCE * n} warm-up "
                            f"jobs {warm:5.2f} s; {cpu[key] / jobs[key]:.2f} CPU s/job, "
                            f"{cpu[key] / walls[key]:.2f} cores busy)",
                            flush=True,
                        )
                finally:
                    for client in clients:
                        client.close()
            finally:
                for server in servers:
                    server.stop()
    base = per_minute[f"{MODES[0]}/1"]
    common.save(
        "jobs_replicas",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "replicas": list(REPLICAS),
            "modes": list(MODES),
            "jobs": jobs,
            "at_once_per_replica": AT_ONCE,
            "ray_cpus": RAY_CPUS,
            "job_cpus": JOB_CPUS,
            "lm_latency_ms": LATENCY_MS,
            "repeats": repeats,
            "wall_s": walls,
            "wall_s_runs": all_walls,
            "cpu_s": cpu,
            "cpu_s_per_job": {k: cpu[k] / jobs[k] for k in cpu},
            "jobs_ran_per_replica": spread,
            "jobs_per_minute": per_minute,
            "ratio_vs_1": {k: v / base for k, v in per_minute.items()},
        },
    )


if __name__ == "__main__":
    main()
