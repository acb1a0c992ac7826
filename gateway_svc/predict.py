"""Predict, and the shadow copies it sends: route, run the version's program, record.

Predict takes one reference to the folded state, so the route it picks, the version it
runs and the log position it reports all come from the same moment of the log. Every
prediction, primary or shadow, is recorded by one builder (`_record`) before it is
answered; a shadow's answer is recorded, never returned, and nobody waits for it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import median

import structlog
from opentelemetry.trace import Tracer

from dspyops.artifacts import ArtifactCorrupt, ArtifactNotFound
from dspyops.capture import expires_at_us, kept_inputs, kept_trace, wants_trace
from dspyops.errors import FailedPrecondition, InvalidArgument, Unavailable
from dspyops.history import History
from dspyops.programs.asynccall import acall
from dspyops.programs.errors import ProgramError
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.scrub import scrub
from dspyops.spans import spanned
from dspyops.state import CaptureState, DeploymentState, State, VersionState
from dspyops.telemetry import NO_TRACER, trace_id_hex
from dspyops.tracing import trace_json, traced
from gateway_svc.as_of import state_as_of
from gateway_svc.experiments import deployment_of
from gateway_svc.lm_usage import LMUsage
from gateway_svc.loader import LoadedProgram, ProgramCache, serving_digests
from gateway_svc.records import PredictionRecord, PredictionStore
from gateway_svc.replica import Replica
from gateway_svc.routing import Decision, decide
from gateway_svc.run_settings import running

_MAX_INPUT_CHARS = 100_000
SHADOW_SPAN = "dspyops.shadow"  # a shadow prediction's span: its module and LM calls under it


class Predictions:
    def __init__(
        self,
        replica: Replica,
        records: PredictionStore,
        programs: ProgramCache,
        history: History | None,
        tracer: Tracer = NO_TRACER,
        trace_content: bool = False,
    ) -> None:
        self.replica = replica
        self.tracer = tracer  # spans of module and LM calls (dspyops.spans); no-op: none
        self.trace_content = trace_content  # prompts and completions on LM spans (--trace-content)
        self.records = records
        self.programs = programs
        self.history = history  # None on a gateway tailing a remote optimizer: no as_of
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self.lm_usage: LMUsage | None = None  # LM calls counted by connection and model (--metrics-port)
        # told of every primary prediction once it is recorded (the online evaluators: never blocks)
        self.on_recorded: Callable[[PredictionRecord], None] = lambda record: None
        replica.listeners.append(self._unload_idle)

    def _unload_idle(self, state: State) -> None:
        """Memory follows what can serve, not what was ever registered: a version no route,
        experiment, canary or judge uses any more is unloaded as the log moves on."""
        if len(self.programs):
            self.programs.retain(serving_digests(state))

    def load(self, version: VersionState) -> LoadedProgram:
        """The version's program, its artifact verified against the digest in the log."""
        return self.load_checked(version)[0]

    def load_checked(self, version: VersionState) -> tuple[LoadedProgram, str]:
        """The version's program and its code drift ("" : none; JSON when --allow-code-drift
        serves changed user code); FAILED_PRECONDITION when its code changed otherwise."""
        loaded = self._load(version)
        recorded = version.lineage.get("code_digests", {})
        what = f"version {version.version} of {version.program!r}"
        return loaded, self.programs.check_code(loaded, recorded if isinstance(recorded, dict) else {}, what)

    def _load(self, version: VersionState) -> LoadedProgram:
        try:
            corpora = version.lineage.get("corpora", {})
            return self.programs.get(
                version.artifact_digest,
                lambda: self.replica.artifact(version),  # read only when it is not loaded yet
                f"version {version.version} of {version.program!r}",
                corpora if isinstance(corpora, dict) else {},
            )
        except (ArtifactCorrupt, ArtifactNotFound) as exc:
            structlog.get_logger().error(
                "artifact_refused", program=version.program, version=version.version, error=str(exc)[:300]
            )
            raise FailedPrecondition(
                "deployment",
                f"the artifact of {version.program} {version.version} fails verification "
                f"(sha256 {version.artifact_digest[:12]}...): refused, run `dspyops log verify`",
            ) from None
        except ProgramError as exc:  # a stored spec outside the grammar, or a state that does not fit
            structlog.get_logger().error(
                "program_refused", program=version.program, version=version.version, error=str(exc)[:300]
            )
            raise FailedPrecondition(
                "deployment",
                f"version {version.version} of {version.program!r} cannot be loaded: {exc}",
            ) from None

    async def predict(self, request: gpb.PredictRequest) -> gpb.PredictResponse:
        started = time.perf_counter()
        readiness = self.replica.readiness
        if not readiness.ready:  # an empty or stale replica would answer "no deployment" or worse
            raise Unavailable("", f"this gateway is not serving: {readiness.reason}")
        state = await state_as_of(self.replica, self.history, request.as_of)
        deployment = deployment_of(state, request.deployment)
        decision = decide(deployment, request.routing_key)
        version = state.programs[deployment.program].versions[decision.version]
        loaded, drift = self.load_checked(version)
        inputs = _inputs(request, loaded)
        prediction_id = uuid.uuid4().hex
        # the policy in force now, also for a prediction served as of a past state: what is
        # kept is decided when it is kept
        capture = self._capture(deployment.name)
        with running(loaded, self.lm_usage), spanned(self.tracer, loaded.names, self.trace_content):
            outputs, error, trace = await _run(
                loaded, inputs, trace=request.include_trace or wants_trace(capture)
            )
        trace_id = trace_id_hex()
        if error:
            structlog.get_logger().warning(
                "predict_failed",
                deployment=deployment.name,
                version=version.version,
                prediction_id=prediction_id,
                error=error,
            )
        latency_ms = (time.perf_counter() - started) * 1000
        record = _record(
            prediction_id,
            deployment,
            version.version,
            state,
            latency_ms,
            outputs,
            error,
            decision=decision,
            key_hmac=self.records.key_hmac(request.routing_key),
            code_drift=drift,
            captured=Captured(capture, inputs, trace),
            trace_id=trace_id,
        )
        await self.records.record(record)
        self.on_recorded(record)
        if not error and request.as_of.WhichOneof("point") is None:
            self._send_to_shadows(state, deployment, inputs, prediction_id)
        if error:
            raise FailedPrecondition(
                "",
                f"version {version.version} of {deployment.program!r} could not answer "
                f"({error.split(':', 1)[0]}); prediction {prediction_id} records the failure",
            )
        return gpb.PredictResponse(
            outputs=outputs,
            program=deployment.program,
            version=version.version,
            prediction_id=prediction_id,
            log_position=state.position,
            latency_ms=latency_ms,
            bucket=decision.bucket,
            experiment_id=decision.experiment_id,
            hash_version=decision.hash_version,
            seed=decision.seed,
            trace=trace if request.include_trace else [],
            trace_id=trace_id,
        )

    def _capture(self, deployment: str) -> CaptureState | None:
        current = self.replica.state.deployments.get(deployment)
        return current.capture if current is not None else None

    def _send_to_shadows(
        self, state: State, deployment: DeploymentState, inputs: dict[str, str], primary_id: str
    ) -> None:
        """Copy a share of requests to shadow routes. Their answers are recorded, never
        returned, and the caller does not wait for them."""
        for route in deployment.routes:
            if route.role != "shadow" or random.random() >= route.weight:
                continue
            task = asyncio.create_task(self._shadow(state, deployment, route.version, inputs, primary_id))
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(
        self,
        state: State,
        deployment: DeploymentState,
        version_name: str,
        inputs: dict[str, str],
        primary_id: str,
    ) -> None:
        started = time.perf_counter()
        version = state.programs[deployment.program].versions[version_name]
        drift = ""
        capture = self._capture(deployment.name)
        trace: list[pb.ModuleCall] = []
        # a span of its own in the primary's trace (the task runs in the Predict's context),
        # ending after the RPC's: the caller never waits for a shadow
        attributes = {"dspyops.deployment": deployment.name, "dspyops.version": version_name}
        with self.tracer.start_as_current_span(SHADOW_SPAN, attributes=attributes):
            try:
                loaded, drift = self.load_checked(version)
                with running(loaded, self.lm_usage), spanned(self.tracer, loaded.names, self.trace_content):
                    outputs, error, trace = await _run(loaded, inputs, trace=wants_trace(capture))
            except Exception as exc:  # the version cannot be loaded: recorded as its failure
                outputs, error = {}, _failure(exc)
            trace_id = trace_id_hex()
        try:
            await self.records.record(
                _record(
                    uuid.uuid4().hex,
                    deployment,
                    version_name,
                    state,
                    (time.perf_counter() - started) * 1000,
                    outputs,
                    error,
                    shadow_of=primary_id,
                    code_drift=drift,
                    captured=Captured(capture, inputs, trace),
                    trace_id=trace_id,
                )
            )
        except Exception:
            structlog.get_logger().exception(
                "shadow_record_failed", deployment=deployment.name, version=version_name
            )

    async def shadow_results(self, request: gpb.GetShadowResultsRequest) -> gpb.ShadowResults:
        """Per shadow version: how often it agreed with the primary, and both latencies."""
        deployment = deployment_of(self.replica.state, request.deployment)
        pairs = await asyncio.to_thread(self.records.shadow_pairs, deployment.name)
        by_version: dict[str, list[tuple[str, str, str, float, float, str]]] = {}
        for pair in pairs:
            by_version.setdefault(pair[0], []).append(pair)
        results = gpb.ShadowResults(deployment=deployment.name)
        for version, rows in sorted(by_version.items()):
            ok = [r for r in rows if not r[5]]
            results.versions.append(
                gpb.ShadowVersionResult(
                    version=version,
                    n=len(ok),
                    errors=len(rows) - len(ok),
                    agreement=sum(r[1] == r[2] for r in ok) / len(ok) if ok else 0.0,
                    latency_p50_ms=median(r[3] for r in ok) if ok else 0.0,
                    primary_latency_p50_ms=median(r[4] for r in ok) if ok else 0.0,
                )
            )
        return results


def _inputs(request: gpb.PredictRequest, loaded: LoadedProgram) -> dict[str, str]:
    """The request's inputs, exactly the program's input fields, each of a bounded size."""
    inputs = dict(request.inputs)
    expected = list(loaded.inputs)
    missing = [name for name in expected if name not in inputs]
    if missing:
        raise InvalidArgument("inputs", f"missing {missing}; the program takes {expected}")
    unknown = [name for name in inputs if name not in expected]
    if unknown:
        raise InvalidArgument("inputs", f"unknown fields {unknown}; the program takes {expected}")
    for name, value in inputs.items():
        if len(value) > _MAX_INPUT_CHARS:
            raise InvalidArgument(f"inputs.{name}", f"longer than {_MAX_INPUT_CHARS} characters")
    return inputs


async def _run(
    loaded: LoadedProgram, inputs: dict[str, str], *, trace: bool = False
) -> tuple[dict[str, str], str, list[pb.ModuleCall]]:
    """`(outputs, "", calls)`, or `({}, error, calls)` when the program (or its LM) failed.
    `calls`: every module call when `trace` (a failed call's trace too: it shows which
    stage failed), else []. Without `trace` DSPy runs with no collector at all."""
    if not trace:
        return (*await _call(loaded, inputs), [])
    with traced(loaded.module, loaded.names) as collector:
        outputs, error = await _call(loaded, inputs)
    return outputs, error, collector.calls()


async def _call(loaded: LoadedProgram, inputs: dict[str, str]) -> tuple[dict[str, str], str]:
    """`(outputs, "")`, or `({}, error)` when the program (or its LM) failed."""
    try:
        prediction = await acall(loaded.module, inputs)  # DSPy's async path, or a worker thread
        names = loaded.outputs or [k for k in prediction.keys() if not k.startswith("_")]
        return {name: str(prediction.get(name, "")) for name in names}, ""
    except Exception as exc:
        return {}, _failure(exc)


def _failure(exc: Exception) -> str:
    # scrubbed before it is cut, recorded or logged: a provider's error may echo the key
    return scrub(f"{type(exc).__name__}: {exc}")[:500]


def _record(
    prediction_id: str,
    deployment: DeploymentState,
    version: str,
    state: State,
    latency_ms: float,
    outputs: dict[str, str],
    error: str,
    *,
    decision: Decision | None = None,
    key_hmac: str = "",
    shadow_of: str = "",
    code_drift: str = "",
    captured: Captured | None = None,
    trace_id: str = "",
) -> PredictionRecord:
    """The record of one prediction. A primary's carries its routing `decision` and the
    HMAC of its key; a shadow's has neither (bucket 0, no experiment) and names the
    prediction it shadowed. Either keeps what the deployment's capture policy says of
    `captured` (nothing without a policy)."""
    recorded_at_us = time.time_ns() // 1000
    capture = captured.policy if captured is not None else None
    kept_in = kept_inputs(capture, captured.inputs) if captured is not None else {}
    kept_calls = kept_trace(capture, captured.trace) if captured is not None else []
    return PredictionRecord(
        prediction_id=prediction_id,
        deployment=deployment.name,
        program=deployment.program,
        version=version,
        bucket=decision.bucket if decision else 0,
        experiment_id=decision.experiment_id if decision else "",
        routing_key_sha256="",  # no plain digest: reversible for guessable keys
        routing_key_hmac=key_hmac,
        hash_value=decision.hash_value if decision else 0.0,
        hash_version=decision.hash_version if decision else 0,
        seed=decision.seed if decision else "",
        log_position=state.position,
        latency_ms=latency_ms,
        error=error,
        recorded_at_us=recorded_at_us,
        outputs_json=json.dumps(outputs, sort_keys=True),
        shadow_of=shadow_of,
        code_drift=code_drift,
        inputs_json=json.dumps(kept_in, sort_keys=True, ensure_ascii=False) if kept_in else "",
        trace_json=trace_json(kept_calls) if kept_calls else "",
        capture_expires_at_us=expires_at_us(capture, recorded_at_us),
        trace_id=trace_id,
    )


@dataclass(frozen=True, slots=True)
class Captured:
    """What a prediction's record may keep, and the policy that decides it."""

    policy: CaptureState | None
    inputs: Mapping[str, str]
    trace: Sequence[pb.ModuleCall]
