"""Program spec <-> dspy.Module, with DSPy's JSON saved state and never pickle.

A program version is a `ProgramSpec` (module kind, signature string, instructions) plus the
JSON state DSPy itself writes with `module.save(path)` (demos, instructions). Rebuilding is
`build_module(spec)` followed by `module.load_state(state)`, so a saved state can also be
loaded by plain DSPy without this package.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import dspy
from dspy.utils.saving import get_dependency_versions

from dspyops.errors import shown
from dspyops.signatures import InvalidSignature, parse_signature

MODULE_KINDS: Final = ("Predict", "ChainOfThought")

# dspyops/programs/ holds this module's parts (retrieve.py, errors.py) until it becomes the package itself.
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
        self._parsed()

    def signature_class(self) -> type[dspy.Signature]:
        self.validate()
        return self._parsed()

    def input_fields(self) -> list[str]:
        return list(self._parsed().input_fields)

    def output_fields(self) -> list[str]:
        return list(self._parsed().output_fields)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProgramSpec:
        if not isinstance(d, dict):
            raise ProgramError("spec: must be a JSON object")
        unknown = set(d) - {"module", "signature", "instructions"}
        if unknown:
            raise ProgramError(f"spec: unknown keys {shown(sorted(unknown))}")
        values = {k: d[k] for k in ("module", "signature", "instructions") if k in d}
        for key, value in values.items():
            if not isinstance(value, str):
                raise ProgramError(f"{key}: must be a string, got {type(value).__name__}")
        return cls(**values)


def build_module(spec: ProgramSpec) -> dspy.Module:
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
    module = build_module(spec)
    # `metadata` is save-file bookkeeping; Predict.load_state would set it as an attribute.
    body = {k: v for k, v in state.items() if k != "metadata"}
    try:
        module.load_state(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProgramError(
            f"state: does not fit a {spec.module} with signature {shown(spec.signature)}: {shown(exc)}"
        ) from exc
    return module
