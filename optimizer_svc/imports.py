"""ImportProgram and ExportVersion: DSPy's own saved state in and out of the registry.

Import takes what plain DSPy wrote with ``program.save("x.json")`` plus the program's
spec, checks that it loads into the spec's module, and registers it (lineage optimizer
``"import"``). Per-predictor LM settings in the file are dropped (the LM is the request's
LMConfig, never a key), and keys DSPy would set as attributes on the module are refused.

Version numbers of imports:
- the first version of a program is 1.0.0;
- re-registering an artifact the program already has (the same state, spec and LM, so the
  same content digest), while the latest version has that spec: **patch** bump of the
  latest version (1.1.0 -> 1.1.1);
- anything else follows ``next_version``: minor bump for the latest version's module and
  signature, major bump when the signature or module changed.

Export returns the state as JSON that ``dspy.Predict(sig).load(path)`` reads (DSPy's load
requires the ``metadata`` block, which import adds when the file lacks it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import dspy
from dspy.utils.saving import get_dependency_versions
from google.protobuf.struct_pb2 import Struct

from dspyops.artifacts import ArtifactStore, encode_artifact
from dspyops.commands import Outcome
from dspyops.connections import Connections
from dspyops.errors import InvalidArgument, shown
from dspyops.limits import MAX_STATE_METADATA_BYTES, check_json_size
from dspyops.names import check_name, parse_semver
from dspyops.programs.build import build_module
from dspyops.programs.code import code_identity
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.programs.retrieve import lineage_corpora
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.state import ProgramState
from optimizer_svc.evaluation.plan import build_program, load_version_artifact, parse_state_json
from optimizer_svc.registry.commands import Registry, next_version, registered_version
from optimizer_svc.registry.views import version_view
from optimizer_svc.wire import lm_from_proto, lm_to_proto, program_error, spec_from_proto, spec_to_proto

IMPORT_OPTIMIZER = "import"
# what Predict.dump_state writes; Predict.load_state sets any other key as an attribute
_PREDICTOR_KEYS = frozenset({"traces", "train", "demos", "signature", "lm", "extended_signature", "fields"})


def _check_predictor(name: str, state: Any, predictor: dspy.Predict) -> dict[str, Any]:
    where = "the state" if name == "self" else f"predictor {shown(name)}"
    if not isinstance(state, dict):
        raise InvalidArgument("state_json", f"{where} must be a JSON object")
    unknown = sorted(set(state) - _PREDICTOR_KEYS)
    if unknown:
        raise InvalidArgument("state_json", f"{where} has keys DSPy does not save: {unknown}")
    for key in ("demos", "signature"):
        if key not in state:
            raise InvalidArgument(
                "state_json", f"{where} lacks {key!r} (is this a program.save() JSON file?)"
            )
    signature = state["signature"]
    if not isinstance(signature, dict) or not isinstance(signature.get("fields"), list):
        raise InvalidArgument("state_json", f"{where}: 'signature' must hold a list of 'fields'")
    expected = list(predictor.signature.fields)
    if len(signature["fields"]) != len(expected):
        raise InvalidArgument(
            "state_json",
            f"{where} was saved for a signature with {len(signature['fields'])} fields; "
            f"the spec's has {len(expected)} ({', '.join(expected)})",
        )
    if not isinstance(state["demos"], list):
        raise InvalidArgument("state_json", f"{where}: 'demos' must be a list")
    for i, demo in enumerate(state["demos"]):
        if not isinstance(demo, dict) or not set(demo) & set(expected):
            raise InvalidArgument(
                "state_json", f"{where}: demos[{i}] has none of the fields {', '.join(expected)}"
            )
    return {**state, "lm": None}  # the LM is the request's LMConfig; never a key from a file


def normalize_imported_state(
    spec: ProgramSpec, state: dict[str, Any], programs: ProgramContext = NO_CONTEXT
) -> tuple[dict[str, Any], dspy.Module]:
    """The file's state, checked against the spec's module (every predictor of a pipeline or
    a user module, by its name), LMs dropped, metadata present; and the program it loads into."""
    try:
        module = build_module(spec, programs)
    except ValueError as exc:
        raise program_error("spec", exc) from None
    metadata = state.get("metadata")
    if metadata is None:
        metadata = {"dependency_versions": get_dependency_versions()}
    elif not isinstance(metadata, dict) or not isinstance(metadata.get("dependency_versions"), dict):
        raise InvalidArgument("state_json", "'metadata' must hold a 'dependency_versions' object")
    check_json_size("state_json.metadata", metadata, MAX_STATE_METADATA_BYTES)
    body = {k: v for k, v in state.items() if k != "metadata"}
    if isinstance(module, dspy.Predict):
        result = _check_predictor("self", body, module)
    else:
        predictors = dict(module.named_predictors())
        unknown = sorted(set(body) - set(predictors))
        if unknown:
            raise InvalidArgument(
                "state_json",
                f"keys {unknown} are not predictors of a {spec.module} (expected {sorted(predictors)})",
            )
        result = {}
        for name, predictor in predictors.items():
            if name not in body:
                raise InvalidArgument("state_json", f"lacks predictor {name!r} of a {spec.module}")
            result[name] = _check_predictor(name, body[name], predictor)
    result["metadata"] = metadata
    loaded = build_program(spec, result, "state_json", programs)  # and DSPy itself must load it
    return result, loaded


def import_version(program: ProgramState | None, spec: pb.ProgramSpec, digest: str) -> str:
    """Patch bump for an artifact the program has already (same spec as the latest version);
    otherwise next_version's rules."""
    if program is not None and program.versions:
        latest = max(program.versions.values(), key=lambda v: parse_semver("version", v.version))
        same_spec = latest.spec.get("module", "") == spec.module and " ".join(
            latest.spec.get("signature", "").split()
        ) == " ".join(spec.signature.split())
        if same_spec and any(v.artifact_digest == digest for v in program.versions.values()):
            major, minor, patch = parse_semver("version", latest.version)
            return f"{major}.{minor}.{patch + 1}"
    return next_version(program, spec)


def register_import(
    request: opb.ImportProgramRequest,
    registry: Registry,
    artifacts: ArtifactStore,
    connections: Connections | None = None,
    programs: ProgramContext = NO_CONTEXT,
) -> Outcome:
    # a retry is answered before the (costly) checks of the state: they passed the first time
    prior = registry.ledger.commands.answered("ImportProgram", request)
    if prior is not None:
        return prior
    name = check_name("program", request.program)
    if not request.HasField("spec"):
        raise InvalidArgument("spec", "is required (module and signature of the saved program)")
    spec = spec_from_proto(request.spec, "spec", programs)
    lm = lm_from_proto(request.lm, "lm", connections)
    raw = request.state_json
    state, loaded = normalize_imported_state(spec, parse_state_json(raw), programs)
    code = code_identity(spec)  # the user code it runs, as this server imported it
    try:
        digest, artifact = encode_artifact(spec, state, lm)
    except ValueError as exc:
        raise InvalidArgument("state_json", str(exc).removeprefix("state: ")) from None
    artifacts.put(artifact)
    params = Struct()
    params.update({"state_sha256": hashlib.sha256(raw).hexdigest()})
    saved_with = state["metadata"]["dependency_versions"].get("dspy")
    registered = pb.VersionRegistered(
        program=name,
        spec=spec_to_proto(spec),
        lm=lm_to_proto(lm),
        artifact_digest=digest,
        artifact=artifact,
        status=pb.DEVELOPMENT,
        lineage=pb.Lineage(
            optimizer=IMPORT_OPTIMIZER,
            params=params,
            dspy_version=saved_with if isinstance(saved_with, str) and saved_with else dspy.__version__,
            code_digests=code.digests,
            code_distribution=code.distribution,
            code_version=code.version,
            corpora=lineage_corpora(loaded),  # the digests its Retrieve stages search
        ),
    )
    return registry.register(
        registered,
        promote=False,
        semver=lambda program: import_version(program, registered.spec, digest),
        method="ImportProgram",
        request=request,
    )


def export_artifact(
    request: opb.ExportVersionRequest, registry: Registry, artifacts: ArtifactStore
) -> opb.ExportVersionResponse:
    version = registry.version(request.program, request.version)
    artifact = load_version_artifact(registry, artifacts, version)
    state = dict(artifact.state)
    state.setdefault("metadata", {"dependency_versions": get_dependency_versions()})
    return opb.ExportVersionResponse(
        spec=spec_to_proto(artifact.spec),
        state_json=json.dumps(state, indent=2, ensure_ascii=False).encode("utf-8"),
        lm=lm_to_proto(artifact.lm),
        artifact_digest=version.artifact_digest,
    )


class ImportHandlers:
    """The ImportProgram and ExportVersion RPCs (their checks and appends off the event loop)."""

    def __init__(
        self,
        registry: Registry,
        artifacts: ArtifactStore,
        connections: Connections,
        programs: ProgramContext = NO_CONTEXT,
    ) -> None:
        self.registry = registry
        self.artifacts = artifacts
        self.connections = connections
        self.programs = programs

    async def import_program(self, request: opb.ImportProgramRequest) -> opb.ProgramVersion:
        outcome = await asyncio.to_thread(
            register_import, request, self.registry, self.artifacts, self.connections, self.programs
        )
        version = registered_version(outcome)
        return version_view(version, outcome.state.programs[version.program])

    async def export_version(self, request: opb.ExportVersionRequest) -> opb.ExportVersionResponse:
        return await asyncio.to_thread(export_artifact, request, self.registry, self.artifacts)
