"""Program spec <-> dspy.Module, with DSPy's JSON saved state and never pickle.

A program version is a `ProgramSpec` (module kind, signature string, instructions) plus the
JSON state DSPy itself writes with `module.save(path)` (demos, instructions). Rebuilding is
`build_module(spec)` followed by `module.load_state(state)`, so a saved state can also be
loaded by plain DSPy without this package.

A spec whose ``wrapper`` is set ("KNNFewShot", "Ensemble") builds what that optimizer
registered around the module (dspyops.programs.wrappers); its state holds the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import dspy
from dspy.utils.saving import get_dependency_versions

from dspyops.errors import shown
from dspyops.signatures import InvalidSignature, parse_signature

MODULE_KINDS: Final = ("Predict", "ChainOfThought")
WRAPPERS: Final = ("KNNFewShot", "Ensemble")  # ProgramSpec.wrapper (dspyops.programs.wrappers)
_SPEC_KEYS: Final = ("module", "signature", "instructions", "wrapper")

# dspyops/programs/ holds this module's parts (wrappers.py) until it becomes the package itself.
__path__ = [str(Path(__file__).with_suffix(""))]


class ProgramError(ValueError):
    """A spec or saved state that cannot make a program; the message starts with the field
    (``signature: ...``, ``state: ...``) and holds nothing of the server, only the (cut)
    values it was given, so a server may pass it on to a client as it is."""


@dataclass(frozen=True)
class ProgramSpec:
    module: str = "Predict"
    signature: str = ""
    instructions: str = ""
    wrapper: str = ""  # "" | "KNNFewShot" | "Ensemble": what an optimizer built around the module

    def _parsed(self) -> type[dspy.Signature]:
        """The signature through the project's own parser (dspyops.signatures): a closed set
        of types, nothing imported, errors naming the field and the annotation."""
        try:
            return parse_signature(self.signature, self.instructions or None)
        except InvalidSignature as exc:
            raise ProgramError(str(exc)) from None

    def validate(self) -> None:
        if self.module not in MODULE_KINDS:
            raise ProgramError(
                f"module: unknown module kind {shown(self.module)}; known kinds: {', '.join(MODULE_KINDS)}"
            )
        if not isinstance(self.instructions, str):
            raise ProgramError("instructions: must be a string")
        if self.wrapper not in ("", *WRAPPERS):
            raise ProgramError(
                f"wrapper: unknown {shown(self.wrapper)}; known: {', '.join(WRAPPERS)} (or none)"
            )
        self._parsed()

    def signature_class(self) -> type[dspy.Signature]:
        self.validate()
        return self._parsed()

    def input_fields(self) -> list[str]:
        return list(self._parsed().input_fields)

    def output_fields(self) -> list[str]:
        return list(self._parsed().output_fields)

    def inner(self) -> ProgramSpec:
        """The module a wrapper is built around (the spec itself when there is no wrapper)."""
        return replace(self, wrapper="") if self.wrapper else self

    def to_dict(self) -> dict[str, str]:
        # No wrapper, no key: a spec's JSON (and so an artifact's digest) is what it was before wrappers.
        d = {"module": self.module, "signature": self.signature, "instructions": self.instructions}
        if self.wrapper:
            d["wrapper"] = self.wrapper
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProgramSpec:
        if not isinstance(d, dict):
            raise ProgramError("spec: must be a JSON object")
        unknown = set(d) - set(_SPEC_KEYS)
        if unknown:
            raise ProgramError(f"spec: unknown keys {shown(sorted(unknown))}")
        values = {k: d[k] for k in _SPEC_KEYS if k in d}
        for key, value in values.items():
            if not isinstance(value, str):
                raise ProgramError(f"{key}: must be a string, got {type(value).__name__}")
        return cls(**values)


def build_module(spec: ProgramSpec) -> dspy.Module:
    if spec.wrapper:
        return _wrapped(spec, None)
    sig = spec.signature_class()
    if spec.module == "ChainOfThought":
        return dspy.ChainOfThought(sig)
    return dspy.Predict(sig)


def _strip_lms(state: Any) -> Any:
    """Drop per-predictor LM settings: the LM is recorded as an LMConfig, never with its key."""
    if isinstance(state, dict):
        if "signature" in state and "lm" in state:
            state = {**state, "lm": None}
        return {k: _strip_lms(v) for k, v in state.items()}
    return state


def program_state(module: dspy.Module) -> dict[str, Any]:
    """What ``module.save("x.json")`` writes (state + DSPy's ``metadata``), minus per-predictor LMs.

    Keeping DSPy's own format means plain ``module.load(path)`` reads a saved state without
    this package.
    """
    state: dict[str, Any] = _strip_lms(module.dump_state())
    state["metadata"] = {"dependency_versions": get_dependency_versions()}
    return state


def load_program(spec: ProgramSpec, state: dict[str, Any]) -> dspy.Module:
    """Build the module from its spec, then load DSPy's JSON state into it. Never unpickles."""
    if not isinstance(state, dict):
        raise ProgramError("state: must be a JSON object as written by module.save(...json)")
    # `metadata` is save-file bookkeeping; Predict.load_state would set it as an attribute.
    body = {k: v for k, v in state.items() if k != "metadata"}
    if spec.wrapper:
        return _wrapped(spec, body)
    module = build_module(spec)
    try:
        module.load_state(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProgramError(
            f"state: does not fit a {spec.module} with signature {shown(spec.signature)}: {shown(exc)}"
        ) from exc
    return module


def _wrapped(spec: ProgramSpec, state: dict[str, Any] | None) -> dspy.Module:
    """The wrapper program (dspyops.programs.wrappers.build_wrapped) around the module the spec
    without its wrapper builds. Imported here, not at the top: the wrappers live in this
    module's package directory. (p1's package calls build_wrapped the same way.)"""
    from dspyops.programs.errors import ProgramError as StageError
    from dspyops.programs.wrappers import build_wrapped

    spec.validate()
    try:
        return build_wrapped(spec, build_module(spec.inner()), state)
    except StageError as exc:
        raise ProgramError(str(exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProgramError(
            f"state: does not fit a {spec.wrapper} of {spec.module} with signature "
            f"{shown(spec.signature)}: {shown(exc)}"
        ) from exc
