"""Benchmark 2: gateway throughput with a slow LM (offline engine, 200 ms per call) at 1, 16,
64 and 256 requests in flight, against the deployment DSPy's guide recommends (FastAPI +
uvicorn calling the same program with `acall`: bench/fastapi_baseline.py), against the same
program's `acall` in this process, and against the ideal (in flight / 200 ms). Goal: the
gateway >= 1.0 x FastAPI and >= 0.8 x the ideal at 64 and 256 in flight.

The gateway and the FastAPI server each run as their own process, one at a time, with the
same closed-loop load from this process (grpc.aio for the gateway, aiohttp with a keep-alive
connection per request in flight for FastAPI), levels interleaved. Each server's CPU time per
request (from /proc) says which one does more work. The version's LMConfig(latency_ms=200)
lives in its artifact; the proto LMConfig has no latency_ms field, so the fixture appends the
VersionRegistered event to the log itself instead of going through a job.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import grpc

from bench import common
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import gateway_pb2_grpc

LATENCY_MS = 200
GOAL_FASTAPI, GOAL_IDEAL = 1.0, 0.8
GOAL_LEVELS = (64, 256)


class FastAPIProcess:
    """bench/fastapi_baseline.py as a subprocess, once its /health answers."""

    def __init__(self, workdir: Path, timeout: float = 120.0) -> None:
        self.port = common.free_port()
        self._out = open(workdir / "fastapi.out", "wb")
        cmd = [sys.executable, "-m", "bench.fastapi_baseline", "--port", str(self.port)]
        cmd += ["--latency-ms", str(LATENCY_MS)]
        env = {**os.environ, "PYTHONPATH": str(common.ROOT)}
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._out, stderr=subprocess.STDOUT)
        asyncio.run(self._wait(timeout))

    async def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("the FastAPI baseline exited; see fastapi.out")
                try:
                    async with session.get(f"{self.url}/health") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("the FastAPI baseline did not start")
                await asyncio.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        common.stop_process(self.proc)
        self._out.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


Call = Callable[[str, str], Awaitable[None]]


async def measure(name: str, call: Call, level: int, seconds: float, pid: int | None) -> dict:
    cpu = cpu_seconds(pid) if pid else 0.0
    r = await closed_loop(call, level, seconds)
    if pid:
        served = r["rps"] * seconds
        r["server_cpu_ms_per_request"] = (cpu_seconds(pid) - cpu) * 1000 / max(served, 1)
    cpu_note = f"  server CPU {r['server_cpu_ms_per_request']:5.2f} ms/req" if pid else ""
    print(
        f"  {name:10s} in flight {level:4d}: {r['rps']:7.1f} req/s  p50 {r['p50_ms']:7.1f} ms"
        f"  p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}{cpu_note}",
        flush=True,
    )
    return r


async def run(
    gateway: common.ServeProcess, fastapi: FastAPIProcess, levels: list[int], seconds: float
) -> dict:
    module = common.in_process_program(LATENCY_MS)
    results: dict[str, dict[int, dict]] = {"gateway": {}, "fastapi": {}, "in_process": {}}
    connector = aiohttp.TCPConnector(limit=max(levels))  # a keep-alive connection per request in flight
    async with (
        grpc.aio.insecure_channel(gateway.address) as channel,
        aiohttp.ClientSession(connector=connector) as http,
    ):
        stub = gateway_pb2_grpc.GatewayStub(channel)

        async def via_gateway(text: str, key: str) -> None:
            request = gpb.PredictRequest(deployment=common.DEPLOYMENT, inputs={"text": text}, routing_key=key)
            await stub.Predict(request, timeout=60)

        async def via_fastapi(text: str, key: str) -> None:
            async with http.post(f"{fastapi.url}/predict", json={"text": text}) as response:
                if response.status != 200:
                    raise grpc.aio.AioRpcError(grpc.StatusCode.UNKNOWN, None, None, f"HTTP {response.status}")
                await response.json()

        async def in_process(text: str, key: str) -> None:
            await module.acall(text=text)

        contenders: list[tuple[str, Call, int | None]] = [
            ("gateway", via_gateway, gateway.pid),
            ("fastapi", via_fastapi, fastapi.pid),
            ("in_process", in_process, None),
        ]
        for _, call, _ in contenders:  # warm up each
            await closed_loop(call, 4, 0.5)
        for level in levels:
            for name, call, pid in contenders:
                results[name][level] = await measure(name, call, level, seconds, pid)
    return results


def plot(results: dict, levels: list[int], path: Path) -> None:
    plt = common.plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, style in (("gateway", "o-"), ("fastapi", "^-."), ("in_process", "s--")):
        label = {"fastapi": "FastAPI + uvicorn"}.get(name, name.replace("_", "-"))
        ax.plot(levels, [results[name][lv]["rps"] for lv in levels], style, label=label)
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


def ratios(results: dict, levels: list[int]) -> dict[int, dict[str, float]]:
    return {
        lv: {
            "vs_fastapi": results["gateway"][lv]["rps"] / results["fastapi"][lv]["rps"],
            "vs_ideal": results["gateway"][lv]["rps"] / (lv * 1000 / LATENCY_MS),
            "vs_in_process": results["gateway"][lv]["rps"] / results["in_process"][lv]["rps"],
            "fastapi_vs_ideal": results["fastapi"][lv]["rps"] / (lv * 1000 / LATENCY_MS),
        }
        for lv in levels
    }


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("throughput", args.quick)
    levels, seconds = ([1, 16], 1.5) if args.quick else ([1, 16, 64, 256], 8.0)
    load_start = common.loadavg()
    with common.tmpdir("throughput") as tmp:
        log = Path(tmp) / "log.db"
        common.build_log(log, latency_ms=LATENCY_MS)
        gateway = common.ServeProcess("gateway", log, Path(tmp))
        fastapi = FastAPIProcess(Path(tmp))
        try:
            results = asyncio.run(run(gateway, fastapi, levels, seconds))
        finally:
            gateway.stop()
            fastapi.stop()
    by_level = ratios(results, levels)
    for lv in levels:
        r = by_level[lv]
        goals = lv in GOAL_LEVELS
        print(
            f"  at {lv:3d} in flight: gateway / FastAPI = {r['vs_fastapi']:.2f}"
            f"{'  ' + common.verdict(r['vs_fastapi'], GOAL_FASTAPI, True) if goals else ''};"
            f" gateway / ideal = {r['vs_ideal']:.2f}"
            f"{'  ' + common.verdict(r['vs_ideal'], GOAL_IDEAL, True) if goals else ''};"
            f" gateway / in-process = {r['vs_in_process']:.2f}; FastAPI / ideal = {r['fastapi_vs_ideal']:.2f}"
        )
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
            "ratios": by_level,
            "goal": {"vs_fastapi": GOAL_FASTAPI, "vs_ideal": GOAL_IDEAL, "levels": list(GOAL_LEVELS)},
        },
    )


if __name__ == "__main__":
    main()
