"""`dspyops plot drift DEPLOYMENT --out F` against real servers: a drift monitor over real
predictions and outcomes; the PNG decodes, the Figure carries the reply's signals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from dspyops.plots.drift import drift_figure
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from tests.support.cli_servers import Servers, cli, start_servers

__all__ = ["cli"]  # the fixture


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = start_servers(tmp_path_factory.mktemp("plot-drift"), versions=1)
    with started.opt() as opt:
        opt.create_deployment("web", "p")
        opt.set_routes("web", {"1.0.0": 1.0})
    started.gateway_caught_up()
    with started.gw() as gw:
        gw.set_drift_monitor(
            "web", reference="window", reference_window=10, min_outcomes=10, max_error_rate=0.5
        )
        for i in range(30):
            response = gw.predict("web", {"text": f"refund {i}"}, routing_key=f"user-{i}")
            gw.record_outcome(response.prediction_id, float(i < 10))
    yield started
    started.gateway.stop()
    started.optimizer.stop()


def test_plot_drift_draws_the_signals_against_their_references(cli: Servers, tmp_path: Path) -> None:
    out = tmp_path / "drift.png"
    code, printed = cli.run("plot", "drift", "web", "--out", str(out))
    assert code == 0 and f"wrote {out}" in printed
    assert matplotlib.image.imread(out).ndim == 3

    with cli.gw() as gw:
        status = gw.get_drift_status("web")
    assert {s.signal for s in status.signals} >= {"outcome_rate", "error_rate"}
    top = drift_figure(status).axes[0]
    (bars,) = top.containers
    assert [bar.get_height() for bar in bars] == [s.value for s in status.signals]
    references = next(line for line in top.get_lines() if line.get_gid() == "references")
    assert np.asarray(references.get_ydata()).tolist() == [s.reference for s in status.signals]


def test_plot_drift_of_an_unknown_deployment_is_not_found_and_no_file(cli: Servers, tmp_path: Path) -> None:
    out = tmp_path / "none.png"
    code, printed = cli.run("plot", "drift", "ghost", "--out", str(out))
    assert code == 1 and "NOT_FOUND" in printed and "Traceback" not in printed
    assert not out.exists()


def test_drift_figure_marks_each_detection_at_its_window_end() -> None:
    detections = [
        pb.DriftDetected(
            signal="error_rate",
            statistics=pb.DriftSignal(signal="error_rate", value=value),
            window=pb.DriftWindow(last_us=last_us),
        )
        for value, last_us in [(0.6, 1_700_000_000_000_000), (0.7, 1_700_000_060_000_000)]
    ]
    bottom = drift_figure(gpb.DriftStatus(deployment="web", detections=detections)).axes[1]
    (line,) = [line for line in bottom.get_lines() if line.get_gid() == "detected:error_rate"]
    assert np.asarray(line.get_ydata()).tolist() == [0.6, 0.7]
    assert [str(x) for x in np.asarray(line.get_xdata())] == [
        "2023-11-14T22:13:20.000000",
        "2023-11-14T22:14:20.000000",
    ]
