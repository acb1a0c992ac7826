"""Benchmark: what a trace costs on Predict through the gateway (offline engine, no delay).

Three ways of serving the same one-predictor version, interleaved round by round:
`plain` (no trace: DSPy runs with no collector), `include_trace` (the trace is collected and
returned), and `kept` (a deployment whose capture policy keeps traces and inputs: the trace is
collected and written into the prediction record, not returned). Reported: p50/p99 and the
extra milliseconds per request over `plain`.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench import common
from dspyops.client import GatewayClient
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway

KEPT = "kept"


def add_kept_deployment(log: Path) -> None:
    """A second deployment of the same version whose policy keeps traces and inputs."""
    from dspyops.eventlog import open_store
    from dspyops.events import new_event
    from dspyops.proto import events_pb2 as pb

    store = open_store(str(log), create=False)
    try:
        store.append(
            f"deployment-{KEPT}",
            [
                new_event(pb.DeploymentCreated(deployment=KEPT, program=common.PROGRAM)),
                new_event(pb.RoutesSet(deployment=KEPT, routes=[pb.Route(version="1.0.0", weight=1.0)])),
                new_event(
                    pb.CapturePolicySet(
                        deployment=KEPT, policy=pb.CapturePolicy(traces=True, inputs_outputs=True)
                    )
                ),
            ],
            0,
        )
    finally:
        store.close()


def timed(
    gw: GatewayClient, deployment: str, trace: bool, texts: list[str], n: int, offset: int
) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        gw.predict(deployment, {"text": texts[(offset + i) % len(texts)]}, include_trace=trace)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("trace", args.quick)
    rounds, per_round = (3, 30) if args.quick else (10, 200)
    texts = common.query_texts()
    load_start = common.loadavg()
    ways = {
        "plain": (common.DEPLOYMENT, False),
        "include_trace": (common.DEPLOYMENT, True),
        "kept": (KEPT, False),
    }
    samples: dict[str, list[float]] = {name: [] for name in ways}
    with common.tmpdir("trace") as tmp:
        log = Path(tmp) / "log.db"
        common.build_log(log)
        add_kept_deployment(log)
        gateway = common.ServerThread(lambda: start_gateway(GatewayConfig(log=str(log))))
        try:
            with GatewayClient(gateway.address) as gw:
                for deployment, trace in ways.values():  # warm up
                    timed(gw, deployment, trace, texts, 50, 0)
                for r in range(rounds):
                    for name, (deployment, trace) in ways.items():
                        samples[name] += timed(gw, deployment, trace, texts, per_round, r * per_round)
        finally:
            gateway.stop()
    stats = {k: common.summary_ms(v) for k, v in samples.items()}
    for name, s in stats.items():
        extra = s["p50_ms"] - stats["plain"]["p50_ms"]
        p50, p99 = s["p50_ms"], s["p99_ms"]
        print(f"  {name:13s} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  (+{extra:.3f} ms p50, n={s['n']})")
    common.save("trace", {"quick": args.quick, "loadavg_start": load_start, "stats": stats})


if __name__ == "__main__":
    main()
