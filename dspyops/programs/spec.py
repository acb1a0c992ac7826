"""What a program version is: one predictor, a declarative pipeline, or a user module class.

- one predictor: ``module`` "Predict" | "ChainOfThought" and a ``signature`` (and instructions);
- a pipeline: ``module`` "Pipeline" and ``pipeline`` (the stages have their own signatures);
- the user's own ``dspy.Module``: ``module`` "package.module:Class" from a module the server
  allowlists (``--program-modules``) and ``init_args``, a JSON object for its constructor.
``wrapper`` names what an optimizer built around the module (KNNFewShot, Ensemble).

``validate`` checks what the spec says on its own (nothing imported, no allowlist consulted:
that is ``dspyops.programs.build``'s, which has the server's context). ``to_dict`` of a
one-predictor spec with none of the new fields is what it always was, byte for byte, so old
artifacts keep their digests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import dspy

from dspyops.errors import shown
from dspyops.jsondepth import MAX_JSON_DEPTH, json_depth
from dspyops.programs.allowlist import is_code_ref, parse_ref
from dspyops.programs.errors import ProgramError
from dspyops.programs.pipeline import PipelineSpec
from dspyops.programs.signatures import InvalidSignature, parse_signature

MODULE_KINDS: Final = ("Predict", "ChainOfThought")
PIPELINE: Final = "Pipeline"
WRAPPERS: Final = ("", "KNNFewShot", "Ensemble")
MAX_INIT_ARGS_CHARS: Final = 64_000
_KEYS: Final = ("module", "signature", "instructions", "pipeline", "init_args", "wrapper")


@dataclass(frozen=True)
class ProgramSpec:
    module: str = "Predict"
    signature: str = ""
    instructions: str = ""
    pipeline: PipelineSpec | None = None
    init_args: str = ""  # user module: a JSON object (text) for the constructor; "" is none
    wrapper: str = ""

    # ---------------------------------------------------------------- which kind

    @property
    def is_pipeline(self) -> bool:
        return self.module == PIPELINE

    @property
    def is_user_module(self) -> bool:
        return is_code_ref(self.module)

    @property
    def is_predictor(self) -> bool:
        return not self.is_pipeline and not self.is_user_module

    def stage_corpora(self) -> dict[str, str] | None:
        """Retrieve stage -> the corpus name it searches; None for a user module, whose
        retrievers come from init_args (so only their corpus names say what they search)."""
        if self.is_user_module:
            return None
        if self.pipeline is None:
            return {}
        return {s.name: s.corpus for s in self.pipeline.stages if s.kind == "Retrieve"}

    def _parsed(self) -> type[dspy.Signature]:
        """The signature through the project's own parser (nothing imported, errors naming
        the field and the annotation)."""
        try:
            return parse_signature(self.signature, self.instructions or None)
        except InvalidSignature as exc:
            raise ProgramError("signature", exc.problem) from None

    def init_kwargs(self) -> dict[str, Any]:
        """``init_args`` as the constructor's keyword arguments (checked by ``validate``)."""
        if not self.init_args:
            return {}
        value = json.loads(self.init_args)
        assert isinstance(value, dict)
        return value

    # ---------------------------------------------------------------- checks

    def validate(self) -> None:
        if not isinstance(self.instructions, str) or not isinstance(self.signature, str):
            raise ProgramError("instructions", "must be a string")
        if self.wrapper not in WRAPPERS:
            raise ProgramError(
                "wrapper",
                f"unknown wrapper {shown(self.wrapper)}; known: {', '.join(w for w in WRAPPERS if w)}",
            )
        if self.is_pipeline:
            self._only(
                "pipeline", signature=self.signature, instructions=self.instructions, init_args=self.init_args
            )
            if self.pipeline is None:
                raise ProgramError("pipeline", "module 'Pipeline' needs a pipeline (stages and outputs)")
            self.pipeline.check()
        elif self.is_user_module:
            parse_ref(self.module, "module", "class")
            self._only("user module", signature=self.signature, instructions=self.instructions)
            if self.pipeline is not None:
                raise ProgramError("pipeline", "only module 'Pipeline' takes a pipeline")
            self._check_init_args()
        else:
            if self.module not in MODULE_KINDS:
                raise ProgramError(
                    "module",
                    f"unknown module kind {shown(self.module)}; known kinds: {', '.join(MODULE_KINDS)}, "
                    f"{PIPELINE}, or package.module:Class (a user module)",
                )
            if self.pipeline is not None:
                raise ProgramError("pipeline", "only module 'Pipeline' takes a pipeline")
            if self.init_args:
                raise ProgramError("init_args", "only a user module (package.module:Class) takes init_args")
            self._parsed()

    def _only(self, kind: str, **fields: str) -> None:
        for name, value in fields.items():
            if value:
                raise ProgramError(name, f"a {kind} takes no {name} (its modules declare their own)")

    def _check_init_args(self) -> None:
        if not self.init_args:
            return
        if len(self.init_args) > MAX_INIT_ARGS_CHARS:
            raise ProgramError("init_args", f"at most {MAX_INIT_ARGS_CHARS} characters")
        if json_depth(self.init_args) > MAX_JSON_DEPTH:
            raise ProgramError("init_args", f"nests deeper than {MAX_JSON_DEPTH} levels")
        try:
            value = json.loads(self.init_args)
        except json.JSONDecodeError as exc:
            raise ProgramError("init_args", f"not JSON: {exc.msg} at character {exc.pos}") from None
        if not isinstance(value, dict) or not all(k.isidentifier() for k in value):
            raise ProgramError("init_args", "must be a JSON object of keyword arguments (identifier keys)")

    def signature_class(self) -> type[dspy.Signature]:
        self.validate()
        if not self.is_predictor:
            raise ProgramError("signature", f"a {self.module} program has no single signature")
        return self._parsed()

    # ---------------------------------------------------------------- the program's fields

    def input_fields(self) -> list[str]:
        """The program's inputs; [] for a user module (its examples' input_keys say)."""
        if self.is_pipeline:
            return self.pipeline.program_inputs() if self.pipeline else []
        if self.is_user_module:
            return []
        return list(self._parsed().input_fields)

    def output_fields(self) -> list[str]:
        """The program's outputs; [] for a user module (its examples' other fields say)."""
        if self.is_pipeline:
            return self.pipeline.program_outputs() if self.pipeline else []
        if self.is_user_module:
            return []
        return list(self._parsed().output_fields)

    # ---------------------------------------------------------------- as JSON

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "module": self.module,
            "signature": self.signature,
            "instructions": self.instructions,
        }
        if self.pipeline is not None:
            d["pipeline"] = self.pipeline.to_dict()
        if self.init_args:
            d["init_args"] = self.init_args
        if self.wrapper:
            d["wrapper"] = self.wrapper
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProgramSpec:
        if not isinstance(d, dict):
            raise ProgramError("spec", "must be a JSON object")
        unknown = set(d) - set(_KEYS)
        if unknown:
            raise ProgramError("spec", f"unknown keys {shown(sorted(unknown))}")
        values = {k: d[k] for k in ("module", "signature", "instructions", "init_args", "wrapper") if k in d}
        for key, value in values.items():
            if not isinstance(value, str):
                raise ProgramError(key, f"must be a string, got {type(value).__name__}")
        pipeline = PipelineSpec.from_dict(d["pipeline"]) if "pipeline" in d else None
        return cls(**values, pipeline=pipeline)


__all__ = ["MODULE_KINDS", "PIPELINE", "WRAPPERS", "ProgramSpec"]
