"""What the benchmarks share: machine description, percentiles, result files, fixture logs,
and servers (in a thread of this process, or as `dspyops serve` subprocesses)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dspy
import grpc

from dspyops.launch import ServerThread as _ServerThread

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "dspyops" / "data" / "support_tickets.jsonl"
PROGRAM = "tickets"
DEPLOYMENT = "web"
SIGNATURE = "text -> label"


# ------------------------------------------------------------------ reporting


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smoke run: small sizes, a few seconds")
    return p


def loadavg() -> tuple[float, float, float]:
    return os.getloadavg()


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "grpcio": grpc.__version__,
        "dspy": dspy.__version__,
        "platform": platform.platform(),
    }


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "p50_ms": pct(ms, 50),
        "p99_ms": pct(ms, 99),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
    }


def save(name: str, result: dict[str, Any]) -> Path:
    """Write bench/results/<name>.json (<name>-quick.json for smoke runs) with machine and load."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    if result.get("quick"):
        name = f"{name}-quick"
    result = {"benchmark": name, "machine": machine(), "loadavg_end": loadavg(), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def banner(name: str, quick: bool) -> None:
    compile_bytecode()
    la = loadavg()
    print(f"== {name}{' (quick)' if quick else ''}  load avg {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}", flush=True)


# The servers a benchmark starts run from this checkout. An install (what a deployment runs)
# holds the project's bytecode, compiled by pip; a checkout may hold none (the environment may
# set PYTHONDONTWRITEBYTECODE), and then each server start compiled every module of the
# project anew: 0.25-0.3 s of each cold start here. So the project's modules are compiled once
# (into their __pycache__ directories, which git ignores) before anything is timed.
_compiled = False


def compile_bytecode() -> None:
    global _compiled
    if not _compiled:
        packages = [str(ROOT / name) for name in ("dspyops", "gateway_svc", "optimizer_svc")]
        command = [sys.executable, "-m", "compileall", "-q", *packages]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        _compiled = True


def verdict(ratio: float, goal: float, higher_is_better: bool) -> str:
    ok = ratio >= goal if higher_is_better else ratio <= goal
    return f"{'MET' if ok else 'MISSED'} (goal {'>=' if higher_is_better else '<='} {goal:g})"


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


# ------------------------------------------------------------------ fixtures


def ticket_rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def artifact_for(latency_ms: int = 0, demos: int = 8, instructions: str = "") -> tuple[str, bytes]:
    """A Predict("text -> label") with `demos` labelled demos from the ticket data and an
    offline LM with the given injected latency: the shape of a LabeledFewShot result."""
    from dspyops.artifacts import encode_artifact
    from dspyops.lm import LMConfig
    from dspyops.programs.build import build_module, program_state
    from dspyops.programs.spec import ProgramSpec

    spec = ProgramSpec(module="Predict", signature=SIGNATURE, instructions=instructions)
    module = build_module(spec)
    rows = ticket_rows()[:demos]
    module.demos = [dspy.Example(**row).with_inputs("text") for row in rows]
    return encode_artifact(spec, program_state(module), LMConfig(latency_ms=latency_ms))


def version_event(version: str, latency_ms: int = 0, demos: int = 8, instructions: str = ""):
    """A VersionRegistered event carrying the artifact built above.

    The proto LMConfig has no latency_ms field, so a version whose offline LM injects latency
    cannot be registered through the optimizer's job API; the benchmark appends the event
    itself (the artifact is what the gateway builds the LM from)."""
    from dspyops.proto import events_pb2 as pb

    digest, data = artifact_for(latency_ms, demos, instructions)
    return pb.VersionRegistered(
        program=PROGRAM,
        version=version,
        spec=pb.ProgramSpec(module="Predict", signature=SIGNATURE, instructions=instructions),
        lm=pb.LMConfig(model="offline/nearest-demo", max_tokens=512),
        artifact_digest=digest,
        artifact=data,
        status=pb.PRODUCTION if version == "1.0.0" else pb.STAGING,
        lineage=pb.Lineage(optimizer="bench-fixture"),
    )


def build_log(path: Path | str, latency_ms: int = 0, versions: Sequence[str] = ("1.0.0",)) -> None:
    """A log with program `tickets` (the given versions) and deployment `web` -> versions[0]."""
    from dspyops.eventlog import open_store
    from dspyops.events import new_event
    from dspyops.proto import events_pb2 as pb

    store = open_store(str(path))
    try:
        events = [new_event(version_event(v, latency_ms, instructions=f"v{v}")) for v in versions]
        store.append(f"program-{PROGRAM}", events, 0)
        store.append(
            f"deployment-{DEPLOYMENT}",
            [
                new_event(pb.DeploymentCreated(deployment=DEPLOYMENT, program=PROGRAM)),
                new_event(
                    pb.RoutesSet(
                        deployment=DEPLOYMENT,
                        routes=[pb.Route(version=versions[0], weight=1.0, role=pb.PRIMARY)],
                        reason="bench",
                    )
                ),
            ],
            0,
        )
    finally:
        store.close()


def in_process_program(latency_ms: int = 0) -> dspy.Module:
    """The same program the gateway runs, built the way the gateway builds it."""
    from gateway_svc.loader import ProgramCache

    digest, data = artifact_for(latency_ms, instructions="v1.0.0")
    return ProgramCache().get(digest, data).module


def query_texts(n: int = 50) -> list[str]:
    return [row["text"] for row in ticket_rows()[-n:]]


def tmpdir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=f"dspyops-bench-{prefix}-")


# ------------------------------------------------------------------ servers

ServerThread = _ServerThread  # in-process servers: the same helper the tests use


class ServeProcess:
    """`dspyops serve gateway|optimizer` as a subprocess; `.address` once it is serving."""

    def __init__(
        self, kind: str, log: Path | str | None, workdir: Path, *extra: str, timeout: float = 180.0
    ) -> None:
        self.port_file = workdir / f"{kind}-{os.getpid()}-{id(self)}.port"
        self.port_file.unlink(missing_ok=True)
        self.started = time.perf_counter()
        if kind == "remote-gateway":  # extra = (optimizer address,)
            cmd = [sys.executable, "-m", "dspyops.cli", "serve", "gateway", "--from-optimizer", extra[0]]
            cmd += ["--predictions", str(workdir / f"remote-{id(self)}.predictions")]
            cmd += ["--port-file", str(self.port_file)]
        else:
            cmd = [sys.executable, "-m", "dspyops.cli", "serve", kind]
            if log is not None:
                cmd += ["--log", str(log)]
            cmd += ["--port-file", str(self.port_file), *extra]
        self.log_path = workdir / f"{kind}-{id(self)}.out"
        self._out = open(self.log_path, "wb")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not (self.port_file.exists() and self.port_file.read_text().strip()):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} exited: {self.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{kind} did not start in {timeout}s")
            time.sleep(0.005)
        self.port = int(self.port_file.read_text())
        if kind == "remote-gateway":  # it listens before its first catch-up: ready means SERVING
            self._wait_serving(deadline)

    def _wait_serving(self, deadline: float) -> None:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                try:
                    serving = health_pb2.HealthCheckResponse.SERVING
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == serving:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.005)
        self.stop()
        raise TimeoutError(f"remote gateway not SERVING: {self.log_path.read_text()[-2000:]}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)

    def stop(self) -> None:
        stop_process(self.proc)
        self._out.close()


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s: a server process the benchmark started."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
