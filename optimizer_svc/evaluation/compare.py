"""CompareVersions: two versions of one program on the same examples, and a paired test.

McNemar's exact test when every score is 0 or 1, else the Wilcoxon signed-rank test; the
verdict names the better version only below ``ALPHA``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from dspy.utils.callback import BaseCallback

from dspyops.artifacts import ArtifactStore
from dspyops.connections import OFFLINE_ONLY, Connections
from dspyops.errors import FailedPrecondition
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.cancel import CancelToken
from optimizer_svc.evaluation.plan import (
    Target,
    build_program,
    dataset_from_request,
    describe_version,
    load_version_artifact,
    metric_from_request,
)
from optimizer_svc.evaluation.run import run_evaluation
from optimizer_svc.registry.commands import Registry

ALPHA = 0.05


@dataclass
class PairedTest:
    test: str
    p_value: float
    a_only: int
    b_only: int


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """McNemar's exact test (binomial on the discordant pairs) when every score is 0 or 1,
    else the Wilcoxon signed-rank test (zero differences dropped; all zero: p = 1)."""
    from scipy import stats

    a_only = sum(1 for x, y in zip(a, b, strict=True) if x > y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y > x)
    if all(s in (0.0, 1.0) for s in (*a, *b)):
        discordant = a_only + b_only
        p = 1.0 if discordant == 0 else float(stats.binomtest(a_only, discordant, 0.5).pvalue)
        return PairedTest("mcnemar", min(1.0, p), a_only, b_only)
    if a_only + b_only == 0:
        return PairedTest("wilcoxon", 1.0, 0, 0)
    try:
        p = float(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)
    except ValueError:
        p = 1.0
    return PairedTest("wilcoxon", 1.0 if math.isnan(p) else min(1.0, p), a_only, b_only)


def verdict(score_a: float, score_b: float, p_value: float, alpha: float = ALPHA) -> str:
    if p_value < alpha and score_a != score_b:
        return "a better" if score_a > score_b else "b better"
    return "no significant difference"


def compare_versions(
    request: opb.CompareVersionsRequest,
    registry: Registry,
    artifacts: ArtifactStore,
    allowed_metric_modules: Collection[str],
    datasets_dir: Path | None,
    connections: Connections | None = None,
    cancel: CancelToken | None = None,
    callbacks: Sequence[BaseCallback] = (),
    programs: ProgramContext = NO_CONTEXT,
) -> opb.VersionComparison:
    """Both versions of one program snapshot, on the same examples (blocking)."""
    connections = connections or OFFLINE_ONLY
    program = registry.program(request.program)
    va = Registry._resolve(program, request.a, "a")
    vb = Registry._resolve(program, request.b, "b")
    targets = []
    for v in (va, vb):
        artifact = load_version_artifact(registry, artifacts, v)
        lm = connections.resolve_stored(artifact.lm, describe_version(v))
        targets.append(
            Target(artifact.spec, artifact.state, lm, v.program, v.version, v.artifact_digest, programs)
        )
    for target, name in zip(targets, ("a", "b"), strict=True):
        build_program(target.spec, target.state, name, programs)
    _, metric = metric_from_request(request.metric, allowed_metric_modules)
    if targets[0].spec.input_fields() != targets[1].spec.input_fields() or (
        targets[0].spec.output_fields() != targets[1].spec.output_fields()
    ):
        raise FailedPrecondition("b", f"{vb.version} has other fields than {va.version}: not comparable")
    ref = request.dataset_ref if request.HasField("dataset_ref") else None
    dataset = dataset_from_request(request.dataset, ref, targets[0].spec, datasets_dir)
    scores = [
        [o.score for o in run_evaluation(t, dataset, metric, cancel=cancel, callbacks=callbacks).outcomes]
        for t in targets
    ]
    test = paired_test(scores[0], scores[1])
    n = len(dataset)
    score_a, score_b = sum(scores[0]) / n, sum(scores[1]) / n
    return opb.VersionComparison(
        a=va.version,
        b=vb.version,
        examples=n,
        score_a=score_a,
        score_b=score_b,
        test=test.test,
        p_value=test.p_value,
        a_only=test.a_only,
        b_only=test.b_only,
        verdict=verdict(score_a, score_b, test.p_value),
    )
