"""A gateway whose connections file names a real LM connection loads litellm before it serves,
so no version on such a connection pays for the import with its first predictions (seconds on
a small machine: long enough to use up a canary step's monitoring period with no candidate
prediction, as the learning demo showed). A gateway with only the offline model does not load
it. Each gateway starts in a fresh interpreter, so nothing the test process imported counts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = """
import asyncio, sys
from gateway_svc.server import GatewayConfig, start

async def main() -> None:
    running = await start(GatewayConfig(log=sys.argv[1], lm_connections=sys.argv[2], canary_interval=0))
    print("litellm loaded:", "litellm" in sys.modules)
    await running.stop(0.5)

asyncio.run(main())
"""


def loaded_at_start(tmp_path: Path, connections: str) -> str:
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    run = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path / "log.db"), connections],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("connections", "loaded"), [("real", True), ("", False)])
def test_litellm_is_loaded_at_start_only_for_real_connections(
    tmp_path: Path, connections: str, loaded: bool
) -> None:
    path = ""
    if connections:
        path = str(tmp_path / "connections.toml")
        Path(path).write_text('[connections.local]\napi_base = "http://127.0.0.1:9/v1"\nmodels = ["m1"]\n')
    assert loaded_at_start(tmp_path, path) == f"litellm loaded: {loaded}"
