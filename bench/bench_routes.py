"""Benchmark 5: route-change propagation. From SetRoutes's return (optimizer process) to the
first Predict served with the new routes, on two gateway processes: one tailing the SQLite
file, one tailing the optimizer's SubscribeLog. 200 changes flip the deployment between
versions 1.0.0 and 1.1.0 (weight 1.0 each time); each gateway is polled with Predict from
its own thread until it answers with the new version. Goal (issue 17): p99 <= 5 ms (one Predict
plus one wake-up).

Baseline in the same run: a Predict's own round trip on the same gateways with no change
pending, which is the resolution of this measurement (a change that lands while a poll is
in flight is seen by the next poll).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import common
from dspyops.client import GatewayClient, OptimizerClient

VERSIONS = ("1.0.0", "1.1.0")
GOAL_MS = 5.0


def poll_until(client: GatewayClient, version: str, timeout: float = 10.0) -> tuple[float, int]:
    deadline = time.perf_counter() + timeout
    polls = 0
    while True:
        polls += 1
        response = client.predict(common.DEPLOYMENT, {"text": "refund please"}, routing_key="k")
        now = time.perf_counter()
        if response.version == version:
            return now, polls
        if now > deadline:
            raise TimeoutError(f"gateway still serves {response.version}, not {version}")


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("routes", args.quick)
    changes = 20 if args.quick else 200
    load_start = common.loadavg()
    with common.tmpdir("routes") as tmp:
        work = Path(tmp)
        log = work / "log.db"
        common.build_log(log, versions=VERSIONS)
        optimizer = common.ServeProcess("optimizer", log, work, "--data-dir", str(work / "data"))
        file_gw = common.ServeProcess("gateway", log, work)
        remote_gw = common.ServeProcess("remote-gateway", None, work, optimizer.address)
        names = ("file-tail", "subscribe-log")
        delays: dict[str, list[float]] = {n: [] for n in names}
        polls: dict[str, list[int]] = {n: [] for n in names}
        idle: dict[str, list[float]] = {n: [] for n in names}
        try:
            with (
                OptimizerClient(optimizer.address) as opt,
                GatewayClient(file_gw.address) as a,
                GatewayClient(remote_gw.address) as b,
                ThreadPoolExecutor(2) as pool,
            ):
                clients = dict(zip(names, (a, b), strict=True))
                for name, c in clients.items():  # warm up; the remote one may still be catching up
                    poll_until(c, VERSIONS[0], timeout=60)
                    for _ in range(50):
                        t0 = time.perf_counter()
                        c.predict(common.DEPLOYMENT, {"text": "refund please"}, routing_key="k")
                        idle[name].append(time.perf_counter() - t0)
                for i in range(changes):
                    target = VERSIONS[(i + 1) % 2]
                    opt.set_routes(common.DEPLOYMENT, {target: 1.0}, reason=f"bench flip {i}")
                    returned = time.perf_counter()
                    futures = {n: pool.submit(poll_until, c, target) for n, c in clients.items()}
                    for n, f in futures.items():
                        served, count = f.result()
                        delays[n].append(served - returned)
                        polls[n].append(count)
                    time.sleep(0.02)  # let the 2 cores settle between changes
        finally:
            for proc in (remote_gw, file_gw, optimizer):
                proc.stop()
    stats = {n: common.summary_ms(v) for n, v in delays.items()}
    idle_stats = {n: common.summary_ms(v) for n, v in idle.items()}
    for n in names:
        s = stats[n]
        print(
            f"  {n:13s} propagation p50 {s['p50_ms']:6.1f} ms  p99 {s['p99_ms']:6.1f} ms  "
            f"(Predict alone p50 {idle_stats[n]['p50_ms']:.1f} ms; "
            f"mean polls {sum(polls[n]) / len(polls[n]):.1f})"
            f"  {common.verdict(s['p99_ms'], GOAL_MS, False)}"
        )
    common.save(
        "routes",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "changes": changes,
            "propagation": stats,
            "predict_alone": idle_stats,
            "raw_ms": {n: [d * 1000 for d in v] for n, v in delays.items()},
            "goal_p99_ms": GOAL_MS,
        },
    )


if __name__ == "__main__":
    main()
