"""A job whose LM cannot be reached fails naming why (scrubbed), not with DSPy's causeless
"Execution cancelled due to errors or interruption.", and no training example reaches the
server's log."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from dspyops.cli.main import main
from dspyops.client import OptimizerClient
from dspyops.proto import events_pb2 as pb
from tests.support.connections import FAKE_KEY, optimizer_thread
from tests.support.harness import ticket_rows

ROWS = ticket_rows()[:12]  # more than DSPy's max_errors (10): its parallelizer stops the run


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nothing listens


def test_unreachable_lm_fails_naming_the_cause_without_printing_examples(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FAKE_PROVIDER_KEY", FAKE_KEY)
    connections = tmp_path / "connections.toml"
    connections.write_text(
        f"""
[connections.down]
provider = "openai/"
api_base = "http://127.0.0.1:{_closed_port()}/v1"
api_key_env = "FAKE_PROVIDER_KEY"
models = ["m1"]
"""
    )
    caplog.set_level(logging.INFO)
    thread = optimizer_thread(tmp_path, lm_connections=str(connections))
    try:
        with OptimizerClient(thread.address, timeout=120) as opt:
            events = list(
                opt.start_optimization(
                    "t",
                    "text -> label",
                    trainset=ROWS,
                    optimizer="LabeledFewShot",
                    params={"k": 2},
                    lm=pb.LMConfig(model="m1", connection="down"),
                )
            )
        capsys.readouterr()
        assert main(["--optimizer", thread.address, "jobs"]) == 0
        listed = capsys.readouterr().out
    finally:
        thread.stop()
    failed = [e.failed for e in events if e.WhichOneof("kind") == "failed"]
    assert failed, [e.WhichOneof("kind") for e in events]
    error = failed[0].error
    assert "Execution cancelled" not in error
    assert "Connection" in error, error  # litellm's APIConnectionError, naming the refusal
    assert FAKE_KEY not in error
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for row in ROWS:
        assert row["text"][:40] not in logged
    # `jobs` lists it failed, with no final score it never had
    (job_row,) = [line for line in listed.splitlines() if "failed" in line]
    assert job_row.split("failed", 1)[1].split("│")[2].strip() == "-", job_row
