"""Artifact -> a callable dspy.Module with its own LM, built once per artifact digest.

Programs are rebuilt from their JSON artifact (spec + DSPy saved state + LM config), the
digest verified first; no pickle is involved. Each module gets its LM with set_lm, so
concurrent requests for different versions never share DSPy's global settings.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import dspy

from dspyops.artifacts import decode_artifact
from dspyops.lm import LMConfig, build_lm
from dspyops.programs import ProgramSpec, load_program


@dataclass(frozen=True)
class LoadedProgram:
    digest: str
    spec: ProgramSpec
    module: dspy.Module
    lm_config: LMConfig
    inputs: tuple[str, ...]  # parsed once: signature parsing is too slow for every request
    outputs: tuple[str, ...]


class ProgramCache:
    def __init__(self) -> None:
        self._loaded: dict[str, LoadedProgram] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, artifact: bytes) -> LoadedProgram:
        loaded = self._loaded.get(digest)
        if loaded is not None:
            return loaded
        with self._lock:
            loaded = self._loaded.get(digest)
            if loaded is None:
                loaded = self._load(digest, artifact)
                self._loaded[digest] = loaded
        return loaded

    @staticmethod
    def _load(digest: str, artifact: bytes) -> LoadedProgram:
        decoded = decode_artifact(artifact, digest)
        module = load_program(decoded.spec, decoded.state)
        module.set_lm(build_lm(decoded.lm))
        return LoadedProgram(
            digest=digest,
            spec=decoded.spec,
            module=module,
            lm_config=decoded.lm,
            inputs=tuple(decoded.spec.input_fields()),
            outputs=tuple(decoded.spec.output_fields()),
        )
