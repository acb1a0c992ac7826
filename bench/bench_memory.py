"""Benchmark 7: gateway memory under load. RSS of a gateway process (`dspyops serve gateway`,
offline LM without delay, prediction records on) sampled while a grpc.aio client keeps 32
Predicts in flight; `--requests` sets the total (default 40,000, what fits in the
20-minute `make bench` on 2 cores; 100,000 takes ~10 minutes alone at ~170/s).

Baseline: the RSS after the first 10% of requests (warm: program loaded, channels, caches).
Goal: no growth with request count, i.e. the RSS slope over the second half is ~0 KiB per
10k requests (allocator noise aside).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc

from bench import common
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import gateway_pb2_grpc

IN_FLIGHT = 32


async def drive(address: str, total: int, samples: int, rss) -> list[tuple[int, int, float]]:
    texts = common.query_texts()
    points: list[tuple[int, int, float]] = [(0, rss(), 0.0)]
    step = max(1, total // samples)
    done = 0
    t0 = time.perf_counter()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        next_id = 0

        async def worker() -> None:
            nonlocal done, next_id
            while next_id < total:
                i = next_id
                next_id += 1
                request = gpb.PredictRequest(
                    deployment=common.DEPLOYMENT,
                    inputs={"text": texts[i % len(texts)]},
                    routing_key=f"u{i % 5000}",
                )
                await stub.Predict(request, timeout=60)
                done += 1
                if done % step == 0:
                    points.append((done, rss(), time.perf_counter() - t0))

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return points


def slope_kib_per_10k(points: list[tuple[int, int, float]]) -> float:
    half = [(n, r) for n, r, _ in points if n >= points[-1][0] / 2]
    if len(half) < 2:
        return float("nan")
    xs, ys = [n for n, _ in half], [r for _, r in half]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return (
        sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 10_000 if var else float("nan")
    )


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=40_000)
    args = p.parse_args()
    common.banner("memory", args.quick)
    total = 2_000 if args.quick else args.requests
    load_start = common.loadavg()
    with common.tmpdir("memory") as tmp:
        log = Path(tmp) / "log.db"
        common.build_log(log)
        gateway = common.ServeProcess("gateway", log, Path(tmp))
        try:
            start_rss = gateway.rss_kib()
            points = asyncio.run(drive(gateway.address, total, 40, gateway.rss_kib))
        finally:
            gateway.stop()
    warm = next((r for n, r, _ in points if n >= total * 0.1), points[-1][1])
    end = points[-1][1]
    slope = slope_kib_per_10k(points)
    elapsed = points[-1][2]
    print(
        f"  {total:,} predictions in {elapsed:.0f} s ({total / elapsed:.0f}/s): "
        f"RSS at start {start_rss / 1024:.1f} MiB, "
        f"after 10% {warm / 1024:.1f} MiB, at end {end / 1024:.1f} MiB "
        f"(end / warm = {end / warm:.3f}); slope over the second half {slope:+.0f} KiB per 10k requests"
    )
    if not args.quick:
        plt = common.plt()
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([n for n, _, _ in points], [r / 1024 for _, r, _ in points], "o-", ms=3)
        ax.set_xlabel("predictions served")
        ax.set_ylabel("gateway RSS (MiB)")
        ax.set_title(f"Gateway RSS over {total:,} predictions ({IN_FLIGHT} in flight)")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
        fig.tight_layout()
        common.RESULTS.mkdir(parents=True, exist_ok=True)
        fig.savefig(common.RESULTS / "memory.png", dpi=110)
    common.save(
        "memory",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "requests": total,
            "in_flight": IN_FLIGHT,
            "rss_start_kib": start_rss,
            "rss_warm_kib": warm,
            "rss_end_kib": end,
            "slope_kib_per_10k": slope,
            "elapsed_s": elapsed,
            "points": points,
        },
    )


if __name__ == "__main__":
    main()
