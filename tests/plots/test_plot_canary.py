"""`dspyops plot canary DEPLOYMENT --out F` against real servers: a canary advanced by real
traffic and EvaluateCanary; the PNG decodes, the Figure carries the log's percents and checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from dspyops.plots.canary import canary_figure
from tests.support.cli_servers import Servers, cli, start_servers

__all__ = ["cli"]  # the fixture


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = start_servers(tmp_path_factory.mktemp("plot-canary"), versions=2)
    with started.opt() as opt:
        opt.create_deployment("web", "p")
        opt.set_routes("web", {"1.0.0": 1.0})
    started.gateway_caught_up()
    with started.gw() as gw:
        gw.start_canary("web", "1.1.0", steps=[20, 50, 100], min_samples_per_step=10)
        for round_ in range(2):
            # until each side has the step's 10 outcomes: the canary's seed is its random id,
            # so a fixed number of users (80 at 20 %) left the candidate short now and then
            served = {"1.0.0": 0, "1.1.0": 0}
            i = 0
            while min(served.values()) < 10 and i < 2000:
                response = gw.predict("web", {"text": f"refund {i}"}, routing_key=f"user-{round_}-{i}")
                gw.record_outcome(response.prediction_id, 1.0)
                served[response.version] += 1
                i += 1
            assert gw.evaluate_canary("web").action in ("advanced", "promoted")
    yield started
    started.gateway.stop()
    started.optimizer.stop()


def test_plot_canary_draws_its_steps_and_guardrails(cli: Servers, tmp_path: Path) -> None:
    out = tmp_path / "canary.png"
    code, printed = cli.run("plot", "canary", "web", "--out", str(out))
    assert code == 0 and f"wrote {out}" in printed
    assert matplotlib.image.imread(out).ndim == 3

    with cli.opt() as opt:
        log = [e for e in opt.read_log(0, 1000, "deployment-web").events if e.stream == "deployment-web"]
    advanced = [e.payload.canary_advanced for e in log if e.payload.HasField("canary_advanced")]
    ended = [e.payload.canary_ended for e in log if e.payload.HasField("canary_ended")]
    assert [a.percent for a in advanced] == [50.0] and [e.promoted for e in ended] == [True]
    top, bottom = canary_figure("web", log).axes
    percent = next(line for line in top.get_lines() if line.get_gid() == "percent")
    assert np.asarray(percent.get_ydata()).tolist() == [20.0, 50.0, 100.0]
    outcome = next(line for line in bottom.get_lines() if line.get_gid() == "value:outcome")
    checks = [advanced[0].check, ended[0].check]  # the two decisions, in order
    p_values = [g.p_value for c in checks for g in c.guardrails if g.guardrail == "outcome"]
    assert len(p_values) == 2
    assert np.asarray(outcome.get_ydata()).tolist() == p_values


def test_plot_canary_of_an_unknown_deployment_is_not_found_and_no_file(cli: Servers, tmp_path: Path) -> None:
    out = tmp_path / "none.png"
    code, printed = cli.run("plot", "canary", "ghost", "--out", str(out))
    assert code == 1 and "NOT_FOUND" in printed and "Traceback" not in printed
    assert not out.exists()
