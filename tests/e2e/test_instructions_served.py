"""An instruction-only optimized version, served: the rules MIPROv2 wrote on the offline engine
reach the gateway and decide its answers (real optimizer, real gateway, one SQLite log)."""

from __future__ import annotations

import json
from pathlib import Path

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.offline.rules import parse_rules
from tests.support.connections import gateway_thread, optimizer_thread
from tests.support.generated import ZERO_DEMOS, generated_rows
from tests.support.harness import wait_until


def test_mined_rules_decide_what_the_gateway_answers(tmp_path: Path) -> None:
    rows = generated_rows(seed=5)  # made-up words: no answer can come from anywhere but the rules
    optimizer = optimizer_thread(tmp_path)
    try:
        with OptimizerClient(optimizer.address, timeout=300) as opt:
            events = list(
                opt.start_optimization(
                    "words",
                    "text -> label",
                    optimizer="MIPROv2",
                    params=ZERO_DEMOS["MIPROv2"],
                    trainset=rows,
                    val_fraction=0.3,
                )
            )
            done = events[-1].completed
            assert done.final_score > done.baseline_score
            state = json.loads(opt.export_version("words", done.version).state_json)
            opt.create_deployment("web", "words")
            head = opt.set_routes("web", {done.version: 1.0}).log_position
    finally:
        optimizer.stop()

    rules = parse_rules(state["signature"]["instructions"])
    assert rules and state["demos"] == []
    gateway = gateway_thread(tmp_path, predictions=str(tmp_path / "predictions.db"))
    try:
        with GatewayClient(gateway.address) as gw:
            assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
            for rule in rules:
                # A text of one of the rule's keywords among words no rule knows.
                text = f"zzq {rule.keywords[0]} qqz"
                assert gw.predict("web", {"text": text}).outputs["label"] == rule.value
            right = sum(gw.predict("web", {"text": r["text"]}).outputs["label"] == r["label"] for r in rows)
    finally:
        gateway.stop()
    assert right / len(rows) >= done.baseline_score + 0.3
