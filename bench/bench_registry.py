"""Benchmark 9: cost as the registry grows (issue 17, goal 5). Predict p50 and gateway RSS with
10, 1,000 and 10,000 registered versions (each its own artifact) and 1,000 deployments routed
among 10 of them; RSS with 10 and with 1,000 versions loaded (10,000 registered); and the
fold's time per event over logs of 10k, 100k and 1M events (bench_replay's mix).

Baselines in the same run: the smallest registry (10 versions) for latency and memory, the
10k-event log for the fold. Goals: flat Predict p50 (ratio <= 1.1 at 10,000 versions);
memory linear in loaded versions only (RSS with 10,000 registered within 10 % of 10
registered, both with 10 loaded); fold time per event constant (ratio <= 1.2 at 1M).
Plots in bench/results/registry.png.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import dspy
import grpc
from prometheus_client.parser import text_string_to_metric_families

from bench import common
from bench.bench_replay import generate, read_and_fold
from dspyops.artifacts import encode_artifact
from dspyops.client import GatewayClient
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.lm import LMConfig
from dspyops.programs.build import build_module, program_state
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb

ROUTED = 10  # versions the deployments route among
LOADED_MANY = 1_000  # versions loaded at once in the memory-per-loaded-version run
GOALS = {"p50_ratio": 1.1, "rss_ratio": 1.1, "fold_ratio": 1.2}


def artifacts(n: int) -> list[tuple[str, bytes, str]]:
    """n artifacts of the bench's program (8 demos), each with its own instructions and so
    its own digest: (digest, bytes, instructions)."""
    module = build_module(ProgramSpec(module="Predict", signature=common.SIGNATURE))
    module.demos = [dspy.Example(**row).with_inputs("text") for row in common.ticket_rows()[:8]]
    state = program_state(module)
    out = []
    for i in range(n):
        instructions = f"Route the ticket (variant {i})."
        state["signature"]["instructions"] = instructions
        spec = ProgramSpec(module="Predict", signature=common.SIGNATURE, instructions=instructions)
        digest, data = encode_artifact(spec, json.loads(json.dumps(state)), LMConfig())
        out.append((digest, data, instructions))
    return out


def version(i: int) -> str:
    return f"1.{i}.0"


def build_log(path: Path, made: list[tuple[str, bytes, str]], deployments: int) -> None:
    """`len(made)` versions of program tickets, `deployments` deployments routed among the first 10."""
    store = open_store(str(path))
    try:
        stream_version = 0
        for start in range(0, len(made), 500):
            chunk = made[start : start + 500]
            events = [
                new_event(
                    pb.VersionRegistered(
                        program=common.PROGRAM,
                        version=version(start + k),
                        spec=pb.ProgramSpec(module="Predict", signature=common.SIGNATURE, instructions=ins),
                        lm=pb.LMConfig(model="offline/nearest-demo", max_tokens=512),
                        artifact_digest=digest,
                        artifact=data,
                        status=pb.STAGING,
                        lineage=pb.Lineage(optimizer="bench-fixture"),
                    )
                )
                for k, (digest, data, ins) in enumerate(chunk)
            ]
            store.append(f"program-{common.PROGRAM}", events, stream_version)
            stream_version += len(events)
        for d in range(deployments):
            store.append(
                f"deployment-d{d}",
                [
                    new_event(pb.DeploymentCreated(deployment=f"d{d}", program=common.PROGRAM)),
                    new_event(
                        pb.RoutesSet(
                            deployment=f"d{d}",
                            routes=[pb.Route(version=version(d % min(ROUTED, len(made))), weight=1.0)],
                            reason="bench",
                        )
                    ),
                ],
                0,
            )
    finally:
        store.close()


def reroute(path: Path, deployments: int, versions: int) -> None:
    """Route deployment d to version d % versions (a third event in each deployment's stream)."""
    store = open_store(str(path))
    try:
        for d in range(deployments):
            route = pb.Route(version=version(d % versions), weight=1.0)
            store.append(f"deployment-d{d}", [new_event(pb.RoutesSet(deployment=f"d{d}", routes=[route]))], 2)
    finally:
        store.close()


def predict_all(client: GatewayClient, deployments: int, texts: list[str], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        client.predict(f"d{i % deployments}", {"text": texts[i % len(texts)]}, routing_key=f"u{i}")
        out.append(time.perf_counter() - t0)
    return out


def serve(log: Path, work: Path) -> tuple[common.ServeProcess, GatewayClient, int]:
    port_file = work / f"metrics-{time.monotonic_ns()}.port"
    gateway = common.ServeProcess(
        "gateway", log, work, "--metrics-port", "0", "--metrics-port-file", str(port_file)
    )
    client = GatewayClient(gateway.address, timeout=30)
    caught_up(client, log)
    return gateway, client, int(port_file.read_text())


def caught_up(client: GatewayClient, log: Path) -> None:
    store = open_store(str(log), create=False)
    try:
        target = store.head()
    finally:
        store.close()
    while client.list_deployment_states().log_position < target:
        time.sleep(0.05)


def loaded(port: int) -> int:
    """The gateway's dspyops_gateway_loaded_programs gauge, from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "dspyops_gateway_loaded_programs":
                return int(sample.value)
    return -1


def measure_registry(sizes: list[int], deployments: int, calls: int, work: Path) -> dict[int, dict[str, Any]]:
    made = artifacts(max(sizes))
    texts = common.query_texts()
    results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        log = work / f"registry-{n}.db"
        build_log(log, made[:n], deployments)
        gateway, client, port = serve(log, work)
        try:
            predict_all(client, deployments, texts, deployments)  # warm: each deployment once
            samples = predict_all(client, deployments, texts, calls)
            results[n] = {
                "versions": n,
                "deployments": deployments,
                "loaded": loaded(port),
                "rss_kib": gateway.rss_kib(),
                **common.summary_ms(samples),
            }
            if n == max(sizes):  # memory per loaded version: load many, then route back
                many = min(LOADED_MANY, n, deployments)
                reroute(log, deployments, many)
                caught_up(client, log)
                predict_all(client, deployments, texts, deployments)
                results[n]["loaded_many"] = {"loaded": loaded(port), "rss_kib": gateway.rss_kib()}
        finally:
            client.close()
            gateway.stop()
        r = results[n]
        print(
            f"  {n:6,d} versions, {deployments} deployments: Predict p50 {r['p50_ms']:6.3f} ms"
            f"  p99 {r['p99_ms']:6.3f} ms  RSS {r['rss_kib'] / 1024:6.1f} MiB  loaded {r['loaded']}",
            flush=True,
        )
        if "loaded_many" in r:
            m = r["loaded_many"]
            print(f"         with {m['loaded']} loaded: RSS {m['rss_kib'] / 1024:6.1f} MiB", flush=True)
    return results


def measure_fold(sizes: list[int], work: Path) -> dict[int, dict[str, float]]:
    out = {}
    for total in sizes:
        log = work / f"fold-{total}.db"
        generate(log, total)
        rates = read_and_fold(log)
        out[total] = {
            "fold_us_per_event": rates["fold_s"] / rates["events"] * 1e6,
            "read_and_fold_us_per_event": (rates["read_s"] + rates["fold_s"]) / rates["events"] * 1e6,
        }
        log.unlink()
        print(
            f"  fold over {total:9,d} events: {out[total]['fold_us_per_event']:5.2f} us/event"
            f"  (read+fold {out[total]['read_and_fold_us_per_event']:5.2f} us/event)",
            flush=True,
        )
    return out


def plot(registry: dict[int, dict[str, Any]], folds: dict[int, dict[str, float]], path: Path) -> None:
    plt = common.plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    sizes = sorted(registry)
    axes[0].plot(sizes, [registry[n]["p50_ms"] for n in sizes], "o-", label="p50")
    axes[0].plot(sizes, [registry[n]["p99_ms"] for n in sizes], "s--", label="p99")
    axes[0].set(xscale="log", xlabel="registered versions", ylabel="Predict latency (ms)", ylim=(0, None))
    axes[0].set_title("Predict latency, 1,000 deployments")
    axes[0].legend()
    axes[1].plot(sizes, [registry[n]["rss_kib"] / 1024 for n in sizes], "o-", label=f"{ROUTED} loaded")
    top = registry[sizes[-1]].get("loaded_many")
    if top:
        axes[1].plot([sizes[-1]], [top["rss_kib"] / 1024], "r^", label=f"{top['loaded']} loaded")
    axes[1].set(xscale="log", xlabel="registered versions", ylabel="gateway RSS (MiB)", ylim=(0, None))
    axes[1].set_title("Gateway memory")
    axes[1].legend()
    totals = sorted(folds)
    axes[2].plot(totals, [folds[t]["fold_us_per_event"] for t in totals], "o-", label="fold")
    axes[2].plot(totals, [folds[t]["read_and_fold_us_per_event"] for t in totals], "s--", label="read + fold")
    axes[2].set(xscale="log", xlabel="events in the log", ylabel="us per event", ylim=(0, None))
    axes[2].set_title("Fold time per event")
    axes[2].legend()
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("registry", args.quick)
    sizes, deployments, calls = ([10, 100], 50, 200) if args.quick else ([10, 1_000, 10_000], 1_000, 2_000)
    fold_sizes = [10_000, 50_000] if args.quick else [10_000, 100_000, 1_000_000]
    load_start = common.loadavg()
    with common.tmpdir("registry") as tmp:
        work = Path(tmp)
        try:
            registry = measure_registry(sizes, deployments, calls, work)
        except grpc.RpcError as exc:
            raise SystemExit(f"registry benchmark failed: {exc}") from None
        folds = measure_fold(fold_sizes, work)
    small, big = registry[sizes[0]], registry[sizes[-1]]
    ratios = {
        "p50_ratio": big["p50_ms"] / small["p50_ms"],
        "rss_ratio": big["rss_kib"] / small["rss_kib"],
        "fold_ratio": folds[fold_sizes[-1]]["fold_us_per_event"] / folds[fold_sizes[0]]["fold_us_per_event"],
    }
    many = big.get("loaded_many")
    per_loaded = (many["rss_kib"] - big["rss_kib"]) / max(1, many["loaded"] - big["loaded"]) if many else 0.0
    print(
        f"  Predict p50 at {sizes[-1]:,} / {sizes[0]} versions = {ratios['p50_ratio']:.2f}  "
        f"{common.verdict(ratios['p50_ratio'], GOALS['p50_ratio'], False)}"
    )
    print(
        f"  RSS at {sizes[-1]:,} / {sizes[0]} versions (both {ROUTED} loaded) = {ratios['rss_ratio']:.2f}  "
        f"{common.verdict(ratios['rss_ratio'], GOALS['rss_ratio'], False)};"
        f" each further loaded version {per_loaded:.0f} KiB"
    )
    print(
        f"  fold per event at {fold_sizes[-1]:,} / {fold_sizes[0]:,} events = {ratios['fold_ratio']:.2f}  "
        f"{common.verdict(ratios['fold_ratio'], GOALS['fold_ratio'], False)}"
    )
    if not args.quick:
        common.RESULTS.mkdir(parents=True, exist_ok=True)
        plot(registry, folds, common.RESULTS / "registry.png")
    common.save(
        "registry",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "registry": registry,
            "fold": folds,
            "ratios": ratios,
            "kib_per_loaded_version": per_loaded,
            "goals": GOALS,
        },
    )


if __name__ == "__main__":
    main()
