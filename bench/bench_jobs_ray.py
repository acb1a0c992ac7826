"""Benchmark: optimization jobs per minute on the thread executor and the Ray executor, with
a 200 ms offline LM (every call sleeps 200 ms: a remote model's latency, no CPU).

One optimizer in this process (its server on loopback, jobs watched through real gRPC
streams) per executor: `thread` (the default: jobs on threads of the optimizer), `ray` (each
job a Ray task on a local cluster, `ray.init(num_cpus=2)`, one CPU reserved per job) and
`ray-half` (the same with --ray-job-cpus 0.5). The same N jobs (LabeledFewShot k=4: a
baseline and a final evaluation of 20 examples, 4 threads) run 4 at a time (--max-jobs 4) on
each, after AT_ONCE warm-up jobs, which pay for each Ray worker's imports (a cold worker
imports DSPy: seconds). Ratios against the thread executor, in the same run. On one
machine Ray can only add its own overhead; what it buys is more machines (each node's CPUs
add task slots), which this benchmark does not have.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

from bench import common
from dspyops.client import OptimizerClient, examples
from dspyops.lm import LMConfig
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.jobs.requests import ValidatedJob, validate_start
from optimizer_svc.server import OptimizerConfig, start

LATENCY_MS = 200
AT_ONCE = 4
CONFIGS = {"thread": ("thread", 1.0), "ray": ("ray", 1.0), "ray-half": ("ray", 0.5)}


def the_job() -> ValidatedJob:
    rows = common.ticket_rows()
    request = opb.StartOptimizationRequest(
        program="bench",
        spec=pb.ProgramSpec(module="Predict", signature=common.SIGNATURE),
        optimizer="LabeledFewShot",
        metric="exact_match",
        trainset=examples(rows[:30]),
        valset=examples(rows[30:50]),
    )
    request.params.update({"k": 4, "num_threads": 4})
    # the latency is the offline engine's server-side setting: the proto has no field for it
    return replace(validate_start(request), lm=LMConfig(latency_ms=LATENCY_MS))


def run_jobs(server: common.ServerThread, client: OptimizerClient, n: int) -> float:
    """Wall seconds for `n` jobs, AT_ONCE in flight: each submitted, then watched to its end."""
    job = the_job()
    todo = list(range(n))
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            handle = server.running.jobs.submit(job)
            last = list(client.watch_job(handle.job_id))[-1]
            if last.WhichOneof("kind") != "completed":
                failures.append(str(last))

    threads = [threading.Thread(target=worker) for _ in range(AT_ONCE)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{len(failures)} jobs did not complete: {failures[0]}")
    return elapsed


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("jobs_ray", args.quick)
    n = 4 if args.quick else 16
    logging.getLogger("dspy").setLevel(logging.ERROR)
    load_start = common.loadavg()
    per_minute: dict[str, float] = {}
    walls: dict[str, float] = {}
    for name, (executor, cpus) in CONFIGS.items():
        with common.tmpdir(f"jobs-{name}") as tmp:
            work = Path(tmp)
            config = OptimizerConfig(
                log=str(work / "log.db"),
                data_dir=work / "data",
                max_jobs=AT_ONCE,
                executor=executor,
                ray_address="local",
                ray_job_cpus=cpus,
            )
            t0 = time.perf_counter()
            server = common.ServerThread(lambda config=config: start(config))  # type: ignore[misc]
            started = time.perf_counter() - t0
            try:
                with OptimizerClient(server.address, timeout=600) as client:
                    warm = run_jobs(server, client, AT_ONCE)  # a warm worker for each slot
                    walls[name] = run_jobs(server, client, n)
            finally:
                server.stop()  # the Ray executor stops the local cluster it started
            per_minute[name] = 60.0 * n / walls[name]
            ratio = per_minute[name] / per_minute["thread"]
            print(
                f"  {name:9s} {n} jobs in {walls[name]:6.2f} s = {per_minute[name]:6.1f} jobs/min  "
                f"(start {started:5.2f} s, {AT_ONCE} warm-up jobs {warm:5.2f} s)  "
                f"ratio vs thread {ratio:.2f}",
                flush=True,
            )
    common.save(
        "jobs_ray",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "jobs": n,
            "at_once": AT_ONCE,
            "lm_latency_ms": LATENCY_MS,
            "wall_s": walls,
            "jobs_per_minute": per_minute,
            "ratio_vs_thread": {k: v / per_minute["thread"] for k, v in per_minute.items()},
        },
    )


if __name__ == "__main__":
    main()
