"""`dspyops plot job JOB --out F` against real servers: a real BootstrapFewShot job, the PNG
it writes decodes, and the Figure's lines carry the trial scores and the baseline the log has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from dspyops.plots.job import job_figure
from tests.support.cli_servers import Servers, cli, start_servers
from tests.support.harness import ticket_rows

__all__ = ["cli"]  # the fixture
ROWS = ticket_rows()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = start_servers(tmp_path_factory.mktemp("plot-job"), versions=1)
    yield started
    started.gateway.stop()
    started.optimizer.stop()


@pytest.fixture(scope="module")
def job_id(servers: Servers) -> str:
    with servers.opt() as opt:
        events = list(
            opt.start_optimization(
                "tickets",
                "text -> label",
                trainset=ROWS[:20],
                valset=ROWS[20:30],
                optimizer="BootstrapFewShot",
                params={"max_bootstrapped_demos": 2, "max_labeled_demos": 4},
            )
        )
    assert events[-1].WhichOneof("kind") == "completed"
    return str(events[0].job_id)


def test_plot_job_writes_a_png_of_its_trials_and_baseline(cli: Servers, job_id: str, tmp_path: Path) -> None:
    out = tmp_path / "job.png"
    code, printed = cli.run("plot", "job", job_id, "--out", str(out))
    assert code == 0 and f"wrote {out}" in printed
    assert matplotlib.image.imread(out).shape[2] in (3, 4)  # a real PNG, decoded

    with cli.opt() as opt:
        log = [e for e in opt.read_log(0, 1000).events if e.stream == f"job-{job_id}"]
    trials = [e.payload.trial_completed for e in log if e.payload.WhichOneof("kind") == "trial_completed"]
    baseline = next(
        e.payload.baseline_evaluated.score for e in log if e.payload.HasField("baseline_evaluated")
    )
    assert trials
    ax = job_figure(job_id, log).axes[0]
    lines = {line.get_gid(): line for line in ax.get_lines()}
    assert np.asarray(lines["trials"].get_ydata()).tolist() == [t.score for t in trials]
    assert np.asarray(lines["best"].get_ydata()).tolist() == [t.best_score for t in trials]
    assert np.asarray(lines["baseline"].get_ydata()).tolist() == [baseline, baseline]


def test_plot_job_of_an_unknown_job_is_not_found_and_writes_nothing(cli: Servers, tmp_path: Path) -> None:
    out = tmp_path / "none.png"
    code, printed = cli.run("plot", "job", "no-such-job", "--out", str(out))
    assert code == 1 and "NOT_FOUND" in printed and "Traceback" not in printed
    assert not out.exists()
