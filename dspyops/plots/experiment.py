"""An experiment's arms: each arm's mean with its interval, and each treatment's always-valid
(mSPRT) p-value against the experiment's alpha; from one GetExperimentResults reply. The reply
holds the p-value of the sample so far only, so this draws that value, not its history."""

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
    bottom.bar([arm.version for arm in treatments], [arm.sequential_p_value for arm in treatments])
    alpha = results.experiment.alpha
    bottom.axhline(alpha, linestyle="--", color="red", label=f"alpha {alpha:g}", gid="alpha")
    bottom.set(ylabel="always-valid p (sample so far)", ylim=(0, 1))
    bottom.legend(loc="upper right")
    return fig
