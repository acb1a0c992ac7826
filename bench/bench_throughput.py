"""Benchmark 2: gateway throughput with a slow LM (offline engine, 200 ms per call) at 1, 16,
64 and 256 requests in flight, vs an in-process asyncio baseline calling the same program's
`acall` at the same concurrency. Goal: gateway >= 0.7 x baseline at 256 in flight.

The gateway runs as its own process (`dspyops serve gateway --log ...`), the closed-loop
grpc.aio client in this process. The version's LMConfig(latency_ms=200) lives in its
artifact; the proto LMConfig has no latency_ms field, so the fixture appends the
VersionRegistered event to the log itself instead of going through a job.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc

from bench import common
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import gateway_pb2_grpc

LATENCY_MS = 200


async def closed_loop(call, concurrency: int, seconds: float) -> dict[str, float]:
    texts = common.query_texts()
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await call(texts[(w + i) % len(texts)], f"user-{w}-{i}")
                latencies.append(time.perf_counter() - t0)
            except grpc.aio.AioRpcError:
                errors += 1
            i += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return {"rps": len(latencies) / elapsed, "errors": errors, **common.summary_ms(latencies)}


async def run(address: str, levels: list[int], seconds: float) -> dict[str, dict[int, dict]]:
    module = common.in_process_program(LATENCY_MS)
    results: dict[str, dict[int, dict]] = {"gateway": {}, "in_process": {}}
    async with grpc.aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)

        async def via_gateway(text: str, key: str) -> None:
            request = gpb.PredictRequest(deployment=common.DEPLOYMENT, inputs={"text": text}, routing_key=key)
            await stub.Predict(request, timeout=60)

        async def in_process(text: str, key: str) -> None:
            await module.acall(text=text)

        await closed_loop(via_gateway, 4, 0.5)  # warm up both
        await closed_loop(in_process, 4, 0.5)
        for level in levels:
            for name, call in (("gateway", via_gateway), ("in_process", in_process)):
                results[name][level] = r = await closed_loop(call, level, seconds)
                print(
                    f"  {name:10s} in flight {level:4d}: {r['rps']:7.1f} req/s  p50 {r['p50_ms']:7.1f} ms"
                    f"  p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}",
                    flush=True,
                )
    return results


def plot(results: dict, levels: list[int], path: Path) -> None:
    plt = common.plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, style in (("gateway", "o-"), ("in_process", "s--")):
        ax.plot(levels, [results[name][lv]["rps"] for lv in levels], style, label=name.replace("_", "-"))
    ax.plot(
        levels,
        [lv * 1000 / LATENCY_MS for lv in levels],
        ":",
        color="grey",
        label="ideal (in flight / 200 ms)",
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("requests in flight")
    ax.set_ylabel("predictions / s")
    ax.set_title("Throughput, offline LM with 200 ms per call (2 shared cores)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("throughput", args.quick)
    levels, seconds = ([1, 16], 1.5) if args.quick else ([1, 16, 64, 256], 8.0)
    load_start = common.loadavg()
    with common.tmpdir("throughput") as tmp:
        log = Path(tmp) / "log.db"
        common.build_log(log, latency_ms=LATENCY_MS)
        gateway = common.ServeProcess("gateway", log, Path(tmp))
        try:
            results = asyncio.run(run(gateway.address, levels, seconds))
        finally:
            gateway.stop()
    top = levels[-1]
    ratio = results["gateway"][top]["rps"] / results["in_process"][top]["rps"]
    print(f"  gateway / in-process at {top} in flight = {ratio:.2f}  {common.verdict(ratio, 0.7, True)}")
    if not args.quick:
        common.RESULTS.mkdir(parents=True, exist_ok=True)
        plot(results, levels, common.RESULTS / "throughput.png")
    common.save(
        "throughput",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "latency_ms": LATENCY_MS,
            "seconds_per_level": seconds,
            "results": results,
            "ratio_at_top": ratio,
            "goal": 0.7,
        },
    )


if __name__ == "__main__":
    main()
