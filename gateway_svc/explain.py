"""ExplainPrediction: the routing decision of a recorded prediction, recomputed by replaying
the log up to the position it was served at.

The routing key's hash and HMAC are shown only to a caller who gives the matching key (the
hash of a predictable key under a few seeds would single it out); the decision is
recomputed and `reproduced` reported either way. A record without a key (a random draw)
has nothing to withhold: its reason names the draw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from dspyops.errors import DspyopsError
from dspyops.history import History
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import DeploymentState, State, VersionState
from dspyops.tracing import trace_from_json
from dspyops.views import routes_proto
from gateway_svc.evaluators.explain import evaluator_samples
from gateway_svc.experiments import deployment_of
from gateway_svc.learning.lineage import lineage_of
from gateway_svc.loader import LoadedProgram
from gateway_svc.records import PredictionRecord, PredictionStore
from gateway_svc.routing import decide_from_hash, hash_value


def key_matches(
    records: PredictionStore, record: PredictionRecord, deployment: DeploymentState, routing_key: str
) -> bool:
    """Did the caller give the key this prediction was routed by? Its HMAC (or, for records
    from before the HMAC, its sha256) and its hash value must both match."""
    return (
        bool(routing_key)
        and records.key_matches(record, routing_key)
        and (hash_value(deployment, routing_key) == record.hash_value)
    )


async def explain(
    request: gpb.ExplainPredictionRequest,
    history: History,
    records: PredictionStore,
    load: Callable[[VersionState], LoadedProgram],
) -> gpb.Explanation:
    record = await asyncio.to_thread(records.get, request.prediction_id)
    state = await asyncio.to_thread(history.state_at, record.log_position)
    deployment = deployment_of(state, record.deployment)
    again = decide_from_hash(deployment, record.hash_value)
    matches = key_matches(records, record, deployment, request.routing_key)
    shown_hash = matches or not record.has_routing_key
    reason = again.reason if shown_hash else again.reason.replace(f"hash {record.hash_value:.4f}", "its hash")
    explanation = gpb.Explanation(
        prediction_id=record.prediction_id,
        deployment=record.deployment,
        recorded_version=record.version,
        recorded_bucket=record.bucket,
        recomputed_version=again.version,
        recomputed_bucket=again.bucket,
        reproduced=(again.version, again.bucket, again.experiment_id)
        == (record.version, record.bucket, record.experiment_id),
        log_position=record.log_position,
        experiment_id=record.experiment_id,
        hash_version=record.hash_version,
        seed=record.seed,
        routing_key_hash=(record.routing_key_hmac or record.routing_key_sha256) if matches else "",
        hash_value=record.hash_value if matches else -1.0,
        hash_withheld=record.has_routing_key and not matches,
        routes=routes_proto(deployment.routes),
        reason=reason if record.has_routing_key else f"random draw (no routing key); {again.reason}",
        routing_key_matches=matches,
        code_drift=bool(record.code_drift),
        trace_id=record.trace_id,
    )
    if deployment.changed_position:
        change = (await asyncio.to_thread(history.store.read, deployment.changed_position - 1, 1))[0]
        explanation.changed_position = change.position
        explanation.changed_by = change.actor
        explanation.change = change.type.rsplit(".", 1)[-1]
    await _what_ran(explanation, state, record, load)
    scores = await asyncio.to_thread(records.scores_of, record.prediction_id)
    explanation.evaluators.extend(evaluator_samples(deployment, record.prediction_id, scores))
    # a retrained version walks back to its run, drift detection and feedback window
    lineage = await asyncio.to_thread(lineage_of, history.store, state, record.program, record.version)
    if lineage is not None:
        explanation.learning.CopyFrom(lineage)
    return explanation


async def _what_ran(
    explanation: gpb.Explanation,
    state: State,
    record: PredictionRecord,
    load: Callable[[VersionState], LoadedProgram],
) -> None:
    """The code, the LMs and the kept trace of the version the record names: its code
    digests from its lineage, each predictor's connection and model, whether it ran with
    other code (--allow-code-drift), and the trace its deployment's policy kept."""
    program = state.programs.get(record.program)
    version = program.versions.get(record.version) if program is not None else None
    explanation.code_drift = bool(record.code_drift)
    if record.trace_json:
        try:
            explanation.trace.extend(trace_from_json(record.trace_json))
        except ValueError as exc:  # a hand-edited records file: the rest still explains
            structlog.get_logger().warning(
                "kept_trace_unreadable", prediction_id=record.prediction_id, error=str(exc)
            )
    if version is None:  # not expected: the record names a version of the state it was served from
        return
    explanation.code_digests.update(dict(version.lineage.get("code_digests", {})))
    try:
        loaded = await asyncio.to_thread(load, version)
    except DspyopsError:  # this gateway cannot load it (any more): the version's own LM config,
        # for every predictor (stage ""), as the version recorded it
        lm = version.lm
        explanation.stage_lms.append(
            pb.StageLM(connection=str(lm.get("connection", "")), model=str(lm.get("model", "")))
        )
        return
    explanation.stage_lms.extend(
        pb.StageLM(stage=name, connection=loaded.connection, model=loaded.model) for name in loaded.predictors
    )
