"""`dspyops plot experiment DEPLOYMENT --out F` against real servers: an experiment with real
predictions and outcomes; the PNG decodes, the Figure carries the reply's means and p-values."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from dspyops.plots.experiment import experiment_figure
from gateway_svc.statistics.msprt import msprt_p_value
from gateway_svc.statistics.summary import ArmSummary
from tests.support.cli_servers import Servers, cli, start_servers

__all__ = ["cli"]  # the fixture


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = start_servers(tmp_path_factory.mktemp("plot-experiment"), versions=2)
    with started.opt() as opt:
        opt.create_deployment("web", "p")
        opt.create_deployment("plain", "p")
        opt.set_routes("web", {"1.0.0": 1.0})
    started.gateway_caught_up()
    with started.gw() as gw:
        gw.start_experiment("web", "1.0.0", ["1.1.0"], min_samples_per_arm=5)
        for i in range(40):
            response = gw.predict("web", {"text": f"refund {i}"}, routing_key=f"user-{i}")
            gw.record_outcome(response.prediction_id, float(i % 3 != 0))
    yield started
    started.gateway.stop()
    started.optimizer.stop()


def test_plot_experiment_draws_the_arms_and_the_always_valid_p(cli: Servers, tmp_path: Path) -> None:
    out = tmp_path / "experiment.png"
    code, printed = cli.run("plot", "experiment", "web", "--out", str(out))
    assert code == 0 and f"wrote {out}" in printed
    assert matplotlib.image.imread(out).ndim == 3

    with cli.gw() as gw:
        results = gw.get_experiment_results("web", include_history=True)
    assert sum(arm.n for arm in results.arms) == 40
    top, bottom = experiment_figure(results).axes
    means = next(line for line in top.get_lines() if line.get_gid() == "means")
    assert np.asarray(means.get_ydata()).tolist() == [arm.mean for arm in results.arms]
    (treatment,) = (arm for arm in results.arms if not arm.control)
    curve = next(line for line in bottom.get_lines() if line.get_gid() == f"p {treatment.version}")
    assert np.asarray(curve.get_xdata()).tolist() == [look.n for look in treatment.history]
    assert np.asarray(curve.get_ydata()).tolist() == [look.sequential_p_value for look in treatment.history]
    alpha = next(line for line in bottom.get_lines() if line.get_gid() == "alpha")
    assert np.asarray(alpha.get_ydata()).tolist() == [results.experiment.alpha] * 2


def test_the_history_is_the_always_valid_p_read_after_every_outcome(cli: Servers) -> None:
    """Recomputed here from the records file (sqlite3 itself) with msprt_p_value: after each
    outcome of the two arms, the running minimum; the curve ends at n = both arms' outcomes
    and never above the p the gateway reports (the minimum over the looks it made)."""
    with cli.gw() as gw:
        results = gw.get_experiment_results("web", include_history=True)
        plain = gw.get_experiment_results("web")
    assert all(not arm.history for arm in plain.arms)  # asked for only
    control, treatment = (
        next(a for a in results.arms if a.control),
        next(a for a in results.arms if not a.control),
    )
    assert not control.history
    with sqlite3.connect(f"{cli.log}.predictions") as conn:
        rows = conn.execute(
            "SELECT p.version, o.value FROM outcomes o JOIN predictions p USING (prediction_id) "
            "WHERE p.deployment = 'web' AND o.source = '' ORDER BY o.recorded_at_us, o.prediction_id"
        ).fetchall()
    arms = {control.version: ArmSummary(), treatment.version: ArmSummary()}
    expected: list[tuple[int, float]] = []
    low = 1.0
    for version, value in rows:
        arms[version] = arms[version].add(value)
        p = msprt_p_value(arms[control.version], arms[treatment.version], metric="binary")
        low = min(low, p)
        expected.append((len(expected) + 1, low))
    assert [look.n for look in treatment.history] == [n for n, _ in expected]
    assert [look.sequential_p_value for look in treatment.history] == pytest.approx([p for _, p in expected])
    assert treatment.history[-1].n == control.n + treatment.n == 40
    assert treatment.history[-1].sequential_p_value <= treatment.sequential_p_value


@pytest.mark.parametrize("deployment", ["ghost", "plain"])
def test_plot_experiment_without_one_is_a_clear_error_and_no_file(
    cli: Servers, tmp_path: Path, deployment: str
) -> None:
    out = tmp_path / "none.png"
    code, printed = cli.run("plot", "experiment", deployment, "--out", str(out))
    assert code == 1 and "error" in printed and "Traceback" not in printed
    assert not out.exists()
