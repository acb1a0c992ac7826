"""Writes the README's two plots (docs/img/plot-job.png, docs/img/plot-experiment.png) from a
small real scenario: both servers in process on a fresh log, a
BootstrapFewShotWithRandomSearch job on the support tickets, then an experiment of two
versions over 200 real predictions whose outcomes are exact matches against the tickets'
labels; `dspyops plot` draws them.

    PYTHONPATH=$PWD python scripts/readme_plots.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dspyops.cli.main import main  # noqa: E402  (after the repository is on the path)
from tests.support.cli_servers import start_servers  # noqa: E402  (the tests' in-process servers)


def run() -> None:
    rows = [
        json.loads(line) for line in (ROOT / "dspyops/data/support_tickets.jsonl").read_text().splitlines()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        servers = start_servers(Path(tmp), versions=2)
        try:
            with servers.opt() as opt:
                events = list(
                    opt.start_optimization(
                        "tickets",
                        "text -> label",
                        trainset=rows[:30],
                        valset=rows[30:50],
                        optimizer="BootstrapFewShotWithRandomSearch",
                        params={
                            "max_bootstrapped_demos": 4,
                            "max_labeled_demos": 8,
                            "num_candidate_programs": 6,
                        },
                    )
                )
                opt.create_deployment("web", "p")
                opt.set_routes("web", {"1.0.0": 1.0})
            servers.gateway_caught_up()
            with servers.gw() as gw:
                gw.start_experiment("web", "1.0.0", ["1.1.0"], min_samples_per_arm=30)
                for i in range(200):
                    row = rows[i % len(rows)]
                    response = gw.predict("web", {"text": row["text"]}, routing_key=f"user-{i}")
                    right = response.outputs["label"].lower() == row["label"]
                    gw.record_outcome(response.prediction_id, float(right))
            out = ROOT / "docs/img"
            address = ["--optimizer", servers.optimizer.address, "--gateway", servers.gateway.address]
            assert main([*address, "plot", "job", events[0].job_id, "--out", str(out / "plot-job.png")]) == 0
            assert (
                main([*address, "plot", "experiment", "web", "--out", str(out / "plot-experiment.png")]) == 0
            )
        finally:
            servers.gateway.stop()
            servers.optimizer.stop()


if __name__ == "__main__":
    run()
