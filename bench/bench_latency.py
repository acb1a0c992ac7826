"""Benchmark 1: Predict latency through the gateway with a free LM (offline engine, no delay).

Baselines, measured in the same process and interleaved round by round with the gateway:
(a) a bare grpc.aio echo server answering Predict with a PredictResponse of the same shape
(same request and response messages, same client), and (b) the same DSPy program called
in-process with `acall`. Goal: gateway p50 <= 1.3 x (echo p50 + in-process p50).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc

from bench import common
from dspyops.client import GatewayClient
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import gateway_pb2_grpc
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway


class EchoGateway(gateway_pb2_grpc.GatewayServicer):
    """Answers Predict with a response of the gateway's shape, doing no work."""

    async def Predict(self, request: gpb.PredictRequest, context: grpc.aio.ServicerContext):
        return gpb.PredictResponse(
            outputs={"label": "billing"},
            program="tickets",
            version="1.0.0",
            prediction_id="0" * 32,
            log_position=4,
            latency_ms=0.01,
            bucket=0,
        )


class RunningEcho:
    def __init__(self, server: grpc.aio.Server, port: int) -> None:
        self.server, self.port = server, port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float = 1.0) -> None:
        await self.server.stop(grace)


async def start_echo() -> RunningEcho:
    server = grpc.aio.server()
    gateway_pb2_grpc.add_GatewayServicer_to_server(EchoGateway(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return RunningEcho(server, port)


def time_rpc(client: GatewayClient, texts: list[str], n: int, offset: int) -> list[float]:
    out = []
    for i in range(n):
        text = texts[(offset + i) % len(texts)]
        t0 = time.perf_counter()
        client.predict(common.DEPLOYMENT, {"text": text}, routing_key=f"user-{i}")
        out.append(time.perf_counter() - t0)
    return out


async def time_inproc(module, texts: list[str], n: int, offset: int) -> list[float]:
    out = []
    for i in range(n):
        text = texts[(offset + i) % len(texts)]
        t0 = time.perf_counter()
        await module.acall(text=text)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("latency", args.quick)
    rounds, per_round = (3, 30) if args.quick else (10, 200)
    texts = common.query_texts()
    load_start = common.loadavg()
    with common.tmpdir("latency") as tmp:
        log = Path(tmp) / "log.db"
        common.build_log(log)
        gateway = common.ServerThread(lambda: start_gateway(GatewayConfig(log=str(log))))
        echo = common.ServerThread(start_echo)
        module = common.in_process_program()
        loop = asyncio.new_event_loop()
        samples: dict[str, list[float]] = {"gateway": [], "echo": [], "in_process": []}
        try:
            with GatewayClient(gateway.address) as gw, GatewayClient(echo.address) as ec:
                # warm up: connections, program load, first-call caches
                time_rpc(gw, texts, 50, 0)
                time_rpc(ec, texts, 50, 0)
                loop.run_until_complete(time_inproc(module, texts, 50, 0))
                for r in range(rounds):
                    off = r * per_round
                    samples["echo"] += time_rpc(ec, texts, per_round, off)
                    samples["gateway"] += time_rpc(gw, texts, per_round, off)
                    samples["in_process"] += loop.run_until_complete(
                        time_inproc(module, texts, per_round, off)
                    )
        finally:
            loop.close()
            gateway.stop()
            echo.stop()
    stats = {k: common.summary_ms(v) for k, v in samples.items()}
    budget = stats["echo"]["p50_ms"] + stats["in_process"]["p50_ms"]
    ratio = stats["gateway"]["p50_ms"] / budget
    for name, s in stats.items():
        print(f"  {name:11s} p50 {s['p50_ms']:7.3f} ms  p99 {s['p99_ms']:7.3f} ms  (n={s['n']})")
    print(f"  gateway p50 / (echo p50 + in-process p50) = {ratio:.2f}  {common.verdict(ratio, 1.3, False)}")
    print(
        f"  gateway p99 / (echo p99 + in-process p99) = "
        f"{stats['gateway']['p99_ms'] / (stats['echo']['p99_ms'] + stats['in_process']['p99_ms']):.2f}"
    )
    common.save(
        "latency",
        {"quick": args.quick, "loadavg_start": load_start, "stats": stats, "ratio_p50": ratio, "goal": 1.3},
    )


if __name__ == "__main__":
    main()
