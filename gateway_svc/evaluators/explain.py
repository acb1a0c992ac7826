"""ExplainPrediction's part for online evaluators: each evaluator attached to the deployment
when the prediction was served, the hash point that decided whether it sampled the
prediction, and the score it recorded; one that scored it without being attached then (a
metric attached before the outcome arrived) shows with share 0."""

from __future__ import annotations

from collections.abc import Mapping

from dspyops.evaluators_state import SOURCE_PREFIX, evaluator_source
from dspyops.proto import events_pb2 as pb
from dspyops.state import DeploymentState
from gateway_svc.evaluators.sampling import sample_point


def evaluator_samples(
    deployment: DeploymentState, prediction_id: str, scores: Mapping[str, float]
) -> list[pb.EvaluatorSample]:
    """`scores`: the prediction's recorded scores by source (records.scores_of)."""
    shares = {e.name: e.share for e in deployment.evaluators}
    names = sorted({*shares, *(s.removeprefix(SOURCE_PREFIX) for s in scores)})
    samples = []
    for name in names:
        source = evaluator_source(name)
        point = sample_point(name, prediction_id)
        share = shares.get(name, 0.0)
        samples.append(
            pb.EvaluatorSample(
                name=name,
                source=source,
                share=share,
                point=point,
                sampled=point < share,
                scored=source in scores,
                score=scores.get(source, 0.0),
            )
        )
    return samples
