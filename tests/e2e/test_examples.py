"""The README's "Your own programs" examples (examples/) run as they stand, through the real
servers and the CLI's own spec reader: the user's class, the retrieve-then-classify pipeline
and the ReAct agent whose refund tool raises."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dspyops.cli.command import read_spec
from dspyops.client import GatewayClient, OptimizerClient
from dspyops.demo_pipeline import help_centre
from tests.support.connections import gateway_thread, optimizer_thread
from tests.support.harness import ticket_rows, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ALLOWED = frozenset({"helpdesk_example.programs", "helpdesk_example.tools"})
ROWS = ticket_rows()[:10]


@pytest.fixture
def opt(tmp_path: Path) -> Iterator[OptimizerClient]:
    sys.path.insert(0, str(EXAMPLES))  # what PYTHONPATH=. does in the README
    optimizer = optimizer_thread(tmp_path, program_modules=ALLOWED)
    try:
        with OptimizerClient(optimizer.address, timeout=120) as client:
            yield client
    finally:
        optimizer.stop()
        sys.path.remove(str(EXAMPLES))


@pytest.mark.parametrize("name", ["twostep", "triage_pipeline", "agent_pipeline"])
def test_each_example_spec_optimizes_and_serves(opt: OptimizerClient, tmp_path: Path, name: str) -> None:
    spec = read_spec(str(EXAMPLES / "specs" / f"{name}.json"), "", "jobs start")
    assert spec is not None
    opt.register_corpus("help-centre", help_centre())
    events = list(
        opt.start_optimization(
            name,
            "",
            spec=spec,
            trainset=ROWS,
            optimizer="LabeledFewShot",
            params={"k": 2},
            input_keys=["text"],
        )
    )
    assert events[-1].WhichOneof("kind") == "completed", events[-1]
    version = events[-1].completed.version
    opt.create_deployment(f"web-{name}", name)
    head = opt.set_routes(f"web-{name}", {version: 1.0}).log_position
    gateway = gateway_thread(tmp_path, program_modules=ALLOWED)
    try:
        with GatewayClient(gateway.address) as gw:
            assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
            answer = gw.predict(f"web-{name}", {"text": "refund order 1001 please"}, include_trace=True)
            assert answer.outputs["label"] and answer.trace
    finally:
        gateway.stop()
