"""Benchmark: optimization jobs per minute with 1, 2 and 4 optimizer replicas on one
PostgreSQL log, every job a Ray task on one Ray cluster, with a 200 ms offline LM (every
call sleeps 200 ms: a remote model's latency, no CPU).

A throwaway PostgreSQL and a Ray head (`ray start --head --num-cpus 8`, dspyops.localcluster)
serve every configuration; each configuration gets a database of its own. The replicas are
optimizer servers in this process (one Ray driver connection, which they share), each with
`--max-jobs 4` and `--ray-job-cpus 0.5`, so N replicas run up to 4N jobs at once on the
cluster's 16 half-CPU slots. The job is bench_jobs_ray's (LabeledFewShot k=4: a baseline and
a final evaluation of 20 examples, 4 threads). The jobs are submitted round-robin, 4N in
flight (each submitted to its replica, then watched through a real gRPC stream to its end),
after 4N warm-up jobs that give every slot a warm Ray worker (a cold one imports DSPy).
Ratios against 1 replica, in the same run. On one 2-core machine the replicas share the
cores with the Ray workers: what scales here is how many LM waits overlap, not CPU.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from pathlib import Path

from bench import common
from bench.bench_jobs_ray import LATENCY_MS, the_job
from dspyops.client import OptimizerClient
from dspyops.localcluster import LocalCluster, processes_under
from optimizer_svc.server import OptimizerConfig, start

REPLICAS = (1, 2, 4)
AT_ONCE = 4  # --max-jobs of each replica
JOB_CPUS = 1.0
RAY_CPUS = 16  # 16 one-CPU slots: 4 replicas x AT_ONCE jobs at once (and 16 workers kept warm)


def run_round_robin(servers: list[common.ServerThread], clients: list[OptimizerClient], n: int) -> float:
    """Wall seconds for `n` jobs, AT_ONCE per replica in flight: job k goes to replica k % N."""
    job = the_job()
    todo = iter(range(n))
    lock = threading.Lock()
    failures: list[str] = []

    def worker(replica: int) -> None:
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            handle = servers[replica].running.jobs.submit(job)
            last = list(clients[replica].watch_job(handle.job_id))[-1]
            if last.WhichOneof("kind") != "completed":
                failures.append(str(last))

    # AT_ONCE workers per replica, so the replicas take jobs in turn
    slots = [r for _, r in itertools.product(range(AT_ONCE), range(len(servers)))]
    threads = [threading.Thread(target=worker, args=(r,)) for r in slots]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{len(failures)} jobs did not complete: {failures[0]}")
    return elapsed


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
    per_replica = 2 if args.quick else 8  # jobs per replica in the timed run
    logging.getLogger("dspy").setLevel(logging.ERROR)
    load_start = common.loadavg()
    per_minute: dict[str, float] = {}
    walls: dict[str, float] = {}
    jobs: dict[str, int] = {}
    cpu: dict[str, float] = {}  # CPU seconds of this process and the cluster's, in the timed run
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
                    warm = run_round_robin(servers, clients, AT_ONCE * n)
                    key = f"{n}"
                    jobs[key] = per_replica * n
                    cpu0 = cluster_cpu_seconds(cluster.root)
                    walls[key] = run_round_robin(servers, clients, jobs[key])
                    cpu[key] = cluster_cpu_seconds(cluster.root) - cpu0
                finally:
                    for client in clients:
                        client.close()
            finally:
                for server in servers:
                    server.stop()
            per_minute[key] = 60.0 * jobs[key] / walls[key]
            ratio = per_minute[key] / per_minute["1"]
            print(
                f"  {n} replica{'s' if n > 1 else ' '} {jobs[key]:3d} jobs in {walls[key]:6.2f} s = "
                f"{per_minute[key]:6.1f} jobs/min  ({AT_ONCE * n} warm-up jobs {warm:5.2f} s, "
                f"{cpu[key] / jobs[key]:.2f} CPU s/job, {cpu[key] / walls[key]:.2f} cores busy)  "
                f"ratio vs 1 replica {ratio:.2f}",
                flush=True,
            )
    common.save(
        "jobs_replicas",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "replicas": list(REPLICAS),
            "jobs": jobs,
            "at_once_per_replica": AT_ONCE,
            "ray_cpus": RAY_CPUS,
            "job_cpus": JOB_CPUS,
            "lm_latency_ms": LATENCY_MS,
            "submission": "round-robin",
            "wall_s": walls,
            "cpu_s": cpu,
            "cpu_s_per_job": {k: cpu[k] / jobs[k] for k in cpu},
            "jobs_per_minute": per_minute,
            "ratio_vs_1": {k: v / per_minute["1"] for k, v in per_minute.items()},
        },
    )


if __name__ == "__main__":
    main()
