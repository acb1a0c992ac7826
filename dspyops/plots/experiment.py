"""An experiment's arms: each arm's mean with its interval, and each treatment's always-valid
(mSPRT) p-value over the sample against the experiment's alpha; from one GetExperimentResults
reply asked with include_history (a reply without history draws each treatment's p now)."""

from __future__ import annotations

from matplotlib.figure import Figure

from dspyops.plots import new_figure
from dspyops.proto import gateway_pb2 as gpb


def experiment_figure(results: gpb.ExperimentResults) -> Figure:
    """Top: arm means with their intervals; bottom: the treatments' always-valid p vs alpha."""
    arms = list(results.arms)
    names = [f"{arm.version}{' (control)' if arm.control else ''}\nn={arm.n}" for arm in arms]
    means = [arm.mean for arm in arms]
    below = [arm.mean - arm.ci_low for arm in arms]
    above = [arm.ci_high - arm.mean for arm in arms]
    fig, (top, bottom) = new_figure(2)
    top.errorbar(range(len(arms)), means, yerr=[below, above], fmt="o", capsize=6, gid="means")
    top.set_xticks(range(len(arms)), names)
    top.set(title=f"experiment on {results.deployment}: {results.decision}", ylabel="mean outcome")
    treatments = [arm for arm in arms if not arm.control]
    alpha = results.experiment.alpha
    if any(arm.history for arm in treatments):
        for arm in treatments:
            n = [look.n for look in arm.history]
            p = [look.sequential_p_value for look in arm.history]
            bottom.step(n, p, where="post", label=f"{arm.version} vs control", gid=f"p {arm.version}")
        bottom.set(xlabel="outcomes of the control and the treatment")
    else:
        bottom.bar([arm.version for arm in treatments], [arm.sequential_p_value for arm in treatments])
    bottom.axhline(alpha, linestyle="--", color="red", label=f"alpha {alpha:g}", gid="alpha")
    bottom.set(ylabel="always-valid p", ylim=(0, 1))
    bottom.legend(loc="upper right")
    return fig
