"""What an Evaluate or CompareVersions request runs: the program (a registered version's
artifact, or a spec + state), the metric and the examples, checked against the folded state
before any LM call, appending nothing.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy

from dspyops.artifacts import Artifact, ArtifactCorrupt, ArtifactNotFound, ArtifactStore, version_artifact
from dspyops.connections import OFFLINE_ONLY, Connections, ResolvedLM
from dspyops.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from dspyops.jsondepth import MAX_JSON_DEPTH, too_deep
from dspyops.metrics import Metric, resolve_metric
from dspyops.programs.build import load_program
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.programs.errors import ModuleNotAllowed
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.state import VersionState
from optimizer_svc.registry.commands import Registry
from optimizer_svc.wire import examples_from_proto, resolve_lm, spec_from_proto

MAX_THREADS = 32
MAX_STATE_JSON_BYTES = 8 * 1024 * 1024


def describe_version(version: VersionState) -> str:
    return f"version {version.version} of {version.program!r}"


def load_version_artifact(registry: Registry, artifacts: ArtifactStore, version: VersionState) -> Artifact:
    """The version's artifact (dspyops.artifacts.version_artifact: the file, else the bytes of
    its VersionRegistered event); FAILED_PRECONDITION when neither is there or it does not verify."""
    where = f"{version.program} {version.version}"
    try:
        return version_artifact(registry.ledger.store, version, artifacts)
    except ArtifactNotFound:
        raise FailedPrecondition(
            "version", f"{where}: artifact {version.artifact_digest} is missing"
        ) from None
    except ArtifactCorrupt as exc:
        raise FailedPrecondition("version", f"{where}: {exc}") from None


def parse_state_json(data: bytes, field: str = "state_json") -> dict[str, Any]:
    if not data:
        raise InvalidArgument(field, "is required: the JSON that program.save('x.json') wrote")
    if len(data) > MAX_STATE_JSON_BYTES:
        raise InvalidArgument(field, f"at most {MAX_STATE_JSON_BYTES} bytes, got {len(data)}")
    if too_deep(data):  # json.loads recurses: measure first (dspyops.jsondepth)
        raise InvalidArgument(field, f"nests arrays/objects deeper than {MAX_JSON_DEPTH} levels")
    try:
        state = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(field, f"is not UTF-8 JSON: {exc}") from None
    if not isinstance(state, dict):
        raise InvalidArgument(field, f"must be a JSON object, got {type(state).__name__}")
    return state


def build_program(
    spec: ProgramSpec, state: dict[str, Any], field: str = "state_json", programs: ProgramContext = NO_CONTEXT
) -> dspy.Module:
    try:
        return load_program(spec, state, programs)
    except ModuleNotAllowed as exc:
        raise PermissionDenied(field, str(exc)) from None
    except ValueError as exc:
        raise InvalidArgument(field, str(exc).removeprefix("state: ")) from None


def metric_from_request(name: str, allowed_modules: Collection[str]) -> tuple[str, Metric]:
    name = name or "exact_match"
    try:
        return name, resolve_metric(name, allowed_modules)
    except ValueError as exc:
        raise InvalidArgument("metric", str(exc).removeprefix("metric: ")) from None


def dataset_from_request(
    inline: Sequence[pb.Example],
    ref: opb.DatasetRef | None,
    spec: ProgramSpec,
    datasets_dir: Path | None,
    field: str = "dataset",
) -> list[dspy.Example]:
    ref_field = f"{field}_ref"
    if ref is not None and inline:
        raise InvalidArgument(field, f"give either {field} or {ref_field}, not both")
    if ref is not None:
        try:
            from dspyops.datarefs import resolve_dataset_ref
        except ImportError:
            raise FailedPrecondition(
                ref_field, "dataset references are not supported by this server"
            ) from None
        examples = resolve_dataset_ref(datasets_dir, ref, spec, ref_field)
    else:
        examples = examples_from_proto(inline, spec, field)
    if not examples:
        raise InvalidArgument(field, f"at least one example is required (inline {field} or {ref_field})")
    return examples


@dataclass
class Target:
    """What to run: a registered version or a spec + state."""

    spec: ProgramSpec
    state: dict[str, Any]
    lm: ResolvedLM  # checked against the server's connections before any example runs
    program: str = ""
    version: str = ""
    artifact_digest: str = ""
    programs: ProgramContext = NO_CONTEXT  # the server's: user code and corpora

    def module(self) -> dspy.Module:
        return build_program(
            self.spec, self.state, "version" if self.version else "state_json", self.programs
        )


@dataclass
class EvaluationPlan:
    target: Target
    dataset: list[dspy.Example]
    metric_name: str
    metric: Metric
    num_threads: int
    include_results: bool


def _threads(value: int) -> int:
    if value == 0:
        return 1
    if not 1 <= value <= MAX_THREADS:
        raise InvalidArgument("num_threads", f"must be in [1, {MAX_THREADS}], got {value}")
    return value


def prepare_evaluation(
    request: opb.EvaluateRequest,
    registry: Registry,
    artifacts: ArtifactStore,
    allowed_metric_modules: Collection[str],
    datasets_dir: Path | None,
    connections: Connections | None = None,
    programs: ProgramContext = NO_CONTEXT,
) -> EvaluationPlan:
    connections = connections or OFFLINE_ONLY
    has_version_ref = bool(request.program or request.version)
    has_spec = request.HasField("spec") or bool(request.state_json)
    if has_version_ref and has_spec:
        raise InvalidArgument("spec", "give either program + version, or spec + state_json, not both")
    if has_version_ref:
        if request.HasField("lm"):
            raise InvalidArgument("lm", "a registered version runs with its own LM; leave lm empty")
        version = registry.version(request.program, request.version)
        artifact = load_version_artifact(registry, artifacts, version)
        target = Target(
            spec=artifact.spec,
            state=artifact.state,
            lm=connections.resolve_stored(artifact.lm, describe_version(version)),
            program=version.program,
            version=version.version,
            artifact_digest=version.artifact_digest,
            # its Retrieve stages search the corpora it recorded, as the gateway serves it
            programs=programs.for_version(version.lineage.get("corpora", {}), artifact.spec.stage_corpora()),
        )
    elif has_spec:
        if not request.HasField("spec"):
            raise InvalidArgument("spec", "is required with state_json")
        spec = spec_from_proto(request.spec, "spec", programs)
        lm = resolve_lm(request.lm, "lm", connections)
        target = Target(spec=spec, state=parse_state_json(request.state_json), lm=lm, programs=programs)
    else:
        raise InvalidArgument("program", "name a registered program and version, or give spec + state_json")
    target.module()  # refuse a state that does not load before any example runs
    metric_name, metric = metric_from_request(request.metric, allowed_metric_modules)
    threads = _threads(request.num_threads)
    ref = request.dataset_ref if request.HasField("dataset_ref") else None
    dataset = dataset_from_request(request.dataset, ref, target.spec, datasets_dir)
    return EvaluationPlan(target, dataset, metric_name, metric, threads, request.include_results)
