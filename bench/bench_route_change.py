"""Benchmark: route change -> first Predict across two gateways on a PostgreSQL log. From
SetRoutes's return (an optimizer process) to the first Predict served with the new routes on
each of two gateway processes tailing the log (woken by LISTEN/NOTIFY), p50/p99 per
gateway. Goal: p99 <= 50 ms.

Baseline in the same run: the same on a SQLite file log with two gateways tailing the file
(bench_routes's file tail). Both setups run side by side (six service processes and the
server); blocks of changes alternate between them, so load changes hit both. Each change
flips deployment `web` between versions 1.0.0 and 1.1.0 (weight 1.0); each gateway is
polled with Predict from its own thread until it answers with the new version. A Predict's
own round trip with no change pending is reported as the measurement's resolution.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import common
from bench.bench_routes import VERSIONS, poll_until
from dspyops.client import GatewayClient, OptimizerClient
from dspyops.pgserver import DURABLE_SETTINGS, running_server


class Setup:
    """An optimizer and two gateways on one log (a file path or a PostgreSQL URL)."""

    def __init__(self, name: str, log: Path | str, work: Path) -> None:
        self.name = name
        work.mkdir()
        common.build_log(log, versions=VERSIONS)
        server_log = isinstance(log, str)
        self.procs = [common.ServeProcess("optimizer", log, work, "--data-dir", str(work / "data"))]
        for i in range(2):
            extra: tuple[str, ...] = ()
            if server_log:  # a gateway on a server log keeps its records (and snapshots) in a home
                home = work / f"gw{i}"
                home.mkdir()
                extra = ("--predictions", str(home / "records.db"))
            self.procs.append(common.ServeProcess("gateway", log, work, *extra))
        self.optimizer = OptimizerClient(self.procs[0].address)
        self.gateways = [GatewayClient(p.address) for p in self.procs[1:]]
        self.delays: list[list[float]] = [[], []]
        self.polls: list[list[int]] = [[], []]
        self.idle: list[list[float]] = [[], []]
        self.flips = 0

    def warm_up(self) -> None:
        for i, client in enumerate(self.gateways):
            poll_until(client, VERSIONS[0], timeout=60)
            for _ in range(50):
                t0 = time.perf_counter()
                client.predict(common.DEPLOYMENT, {"text": "refund please"}, routing_key="k")
                self.idle[i].append(time.perf_counter() - t0)

    def change(self, pool: ThreadPoolExecutor) -> None:
        target = VERSIONS[(self.flips + 1) % 2]
        self.optimizer.set_routes(common.DEPLOYMENT, {target: 1.0}, reason=f"bench flip {self.flips}")
        returned = time.perf_counter()
        self.flips += 1
        futures = [pool.submit(poll_until, c, target) for c in self.gateways]
        for i, future in enumerate(futures):
            served, count = future.result()
            self.delays[i].append(served - returned)
            self.polls[i].append(count)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i in range(2):
            s = common.summary_ms(self.delays[i])
            idle = common.summary_ms(self.idle[i])
            print(
                f"  {self.name:8s} gateway {i + 1}: p50 {s['p50_ms']:6.1f} ms  p99 {s['p99_ms']:6.1f} ms  "
                f"max {max(self.delays[i]) * 1000:6.1f} ms  (Predict alone p50 {idle['p50_ms']:.1f} ms; "
                f"mean polls {sum(self.polls[i]) / len(self.polls[i]):.2f})"
            )
            out[f"gateway{i + 1}"] = {
                "propagation": s,
                "predict_alone": idle,
                "mean_polls": sum(self.polls[i]) / len(self.polls[i]),
                "raw_ms": [d * 1000 for d in self.delays[i]],
            }
        both = self.delays[0] + self.delays[1]
        out["both"] = common.summary_ms(both)
        return out

    def stop(self) -> None:
        for client in (self.optimizer, *self.gateways):
            client.close()
        for proc in reversed(self.procs):
            proc.stop()


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--changes", type=int, default=0, help="changes per setup (default 200; --quick 20)")
    args = p.parse_args()
    common.banner("route_change", args.quick)
    changes = args.changes or (20 if args.quick else 200)
    block = 10 if args.quick else 25
    load_start = common.loadavg()
    setups: list[Setup] = []
    # durable, as a deployment runs it: a SetRoutes returns after its COMMIT's WAL flush
    with common.tmpdir("route-change") as tmp, running_server(dict(DURABLE_SETTINGS)) as server:
        work = Path(tmp)
        try:
            setups.append(Setup("postgres", server.url(server.create_database()), work / "pg"))
            setups.append(Setup("sqlite", work / "sqlite" / "log.db", work / "sqlite"))
            for setup in setups:
                setup.warm_up()
            with ThreadPoolExecutor(2) as pool:
                done = 0
                while done < changes:
                    n = min(block, changes - done)
                    for setup in setups if (done // block) % 2 == 0 else reversed(setups):
                        for _ in range(n):
                            setup.change(pool)
                            time.sleep(0.02)  # let the 2 cores settle between changes
                    done += n
            results = {setup.name: setup.report() for setup in setups}
        finally:
            for setup in setups:
                setup.stop()
    pg, lite = results["postgres"], results["sqlite"]
    worst = max(pg["gateway1"]["propagation"]["p99_ms"], pg["gateway2"]["propagation"]["p99_ms"])
    print(
        f"  p99 over both gateways: PostgreSQL {pg['both']['p99_ms']:.1f} ms, SQLite file "
        f"{lite['both']['p99_ms']:.1f} ms; worst gateway on PostgreSQL {worst:.1f} ms  "
        f"{common.verdict(worst, 50, False)}"
    )
    common.save(
        "route_change",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "changes_per_setup": changes,
            "results": results,
            "goal_p99_ms": 50,
        },
    )


if __name__ == "__main__":
    main()
