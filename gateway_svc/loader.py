"""Artifact -> a callable dspy.Module with its own LM, built once per artifact digest.

Programs are rebuilt from their JSON artifact (spec + DSPy saved state + LM config), the
digest verified first; no pickle is involved. Each module gets its LM with set_lm, so
concurrent requests for different versions never share DSPy's global settings.

The version's LM connection is resolved by name against this gateway's connections: a
connection this gateway lacks is FAILED_PRECONDITION naming the version and the
connection, and the key is this gateway's, read when it started.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import dspy

from dspyops.artifacts import decode_artifact
from dspyops.connections import OFFLINE_ONLY, Connections
from dspyops.lm import LMConfig, lm_from_resolved
from dspyops.programs import ProgramSpec, load_program
from dspyops.tracing import module_names


@dataclass(frozen=True)
class LoadedProgram:
    digest: str
    spec: ProgramSpec
    module: dspy.Module
    lm_config: LMConfig
    inputs: tuple[str, ...]  # parsed once: signature parsing is too slow for every request
    outputs: tuple[str, ...]
    names: Mapping[int, str]  # id(module) -> its name in the program, for traces (walked once)
    predictors: tuple[str, ...] = ()  # named_predictors() names: the stages ExplainPrediction lists
    connection: str = ""  # the connection and model this gateway runs the version with
    model: str = ""


class ProgramCache:
    def __init__(self, connections: Connections | None = None) -> None:
        self.connections = connections or OFFLINE_ONLY
        self._loaded: dict[str, LoadedProgram] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, artifact: bytes, what: str = "") -> LoadedProgram:
        """``what`` names the version in a refusal, e.g. "version 1.2.0 of 'tickets'"."""
        loaded = self._loaded.get(digest)
        if loaded is not None:
            return loaded
        with self._lock:
            loaded = self._loaded.get(digest)
            if loaded is None:
                loaded = self._load(digest, artifact, what or f"the version with artifact {digest[:12]}")
                self._loaded[digest] = loaded
        return loaded

    def _load(self, digest: str, artifact: bytes, what: str) -> LoadedProgram:
        decoded = decode_artifact(artifact, digest)
        resolved = self.connections.resolve_stored(decoded.lm, what)  # before building anything
        module = load_program(decoded.spec, decoded.state)
        module.set_lm(lm_from_resolved(resolved))
        return LoadedProgram(
            digest=digest,
            spec=decoded.spec,
            module=module,
            lm_config=decoded.lm,
            inputs=tuple(decoded.spec.input_fields()),
            outputs=tuple(decoded.spec.output_fields()),
            names=module_names(module),
            predictors=tuple(name for name, _ in module.named_predictors()),
            connection=resolved.connection.name,
            model=resolved.model,
        )
