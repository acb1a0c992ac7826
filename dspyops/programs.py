"""Program spec <-> dspy.Module, with DSPy's JSON saved state and never pickle.

A program version is a `ProgramSpec` (module kind, signature string, instructions) plus the
JSON state DSPy itself writes with `module.save(path)` (demos, instructions). Rebuilding is
`build_module(spec)` followed by `module.load_state(state)`, so a saved state can also be
loaded by plain DSPy without this package.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import dspy
from dspy.utils.saving import get_dependency_versions

MODULE_KINDS: Final = ("Predict", "ChainOfThought")


@dataclass(frozen=True)
class ProgramSpec:
    module: str = "Predict"
    signature: str = ""
    instructions: str = ""

    def _parsed(self) -> type[dspy.Signature]:
        """Parse the signature string, turning DSPy's parser errors into a message naming the field."""
        if not isinstance(self.signature, str) or not self.signature.strip():
            raise ValueError("signature: must be a non-empty string such as 'text -> label'")
        if "->" not in self.signature:
            raise ValueError(f"signature: {self.signature!r} has no '->' between inputs and outputs")
        try:
            sig = dspy.Signature(self.signature, self.instructions or None)
        except Exception as exc:  # DSPy raises ValueError, SyntaxError, TypeError... depending on the flaw
            raise ValueError(f"signature: cannot parse {self.signature!r}: {exc}") from exc
        if not sig.input_fields:
            raise ValueError(f"signature: {self.signature!r} declares no input fields")
        if not sig.output_fields:
            raise ValueError(f"signature: {self.signature!r} declares no output fields")
        return sig

    def validate(self) -> None:
        if self.module not in MODULE_KINDS:
            raise ValueError(
                f"module: unknown module kind {self.module!r}; known kinds: {', '.join(MODULE_KINDS)}"
            )
        if not isinstance(self.instructions, str):
            raise ValueError("instructions: must be a string")
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
            raise ValueError("spec: must be a JSON object")
        unknown = set(d) - {"module", "signature", "instructions"}
        if unknown:
            raise ValueError(f"spec: unknown keys {sorted(unknown)}")
        values = {k: d[k] for k in ("module", "signature", "instructions") if k in d}
        for key, value in values.items():
            if not isinstance(value, str):
                raise ValueError(f"{key}: must be a string, got {type(value).__name__}")
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
    state = _strip_lms(module.dump_state())
    state["metadata"] = {"dependency_versions": get_dependency_versions()}
    return state


def load_program(spec: ProgramSpec, state: dict[str, Any]) -> dspy.Module:
    """Build the module from its spec, then load DSPy's JSON state into it. Never unpickles."""
    if not isinstance(state, dict):
        raise ValueError("state: must be a JSON object as written by module.save(...json)")
    module = build_module(spec)
    # `metadata` is save-file bookkeeping; Predict.load_state would set it as an attribute.
    body = {k: v for k, v in state.items() if k != "metadata"}
    try:
        module.load_state(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(
            f"state: does not fit a {spec.module} with signature {spec.signature!r}: {exc!r}"
        ) from exc
    return module
