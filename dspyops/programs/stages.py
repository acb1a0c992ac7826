"""One stage of a declarative pipeline: its kind, signature and settings, checked alone.

A stage is an ordinary DSPy module (Predict, ChainOfThought, ReAct) or a retriever
(Retrieve: ``query -> passages`` over a registered corpus). This module checks what a stage
says on its own, statically (nothing imported, no corpus looked up); how stages wire
together is ``dspyops.programs.pipeline``'s.

Bounds, and why: a ReAct stage takes at most ``MAX_TOOLS`` tools and ``MAX_ITERS`` steps per
call (each step is an LM call and a tool call); a tool call at most ``MAX_TOOL_TIMEOUT``
seconds; a Retrieve stage 1 to ``MAX_K`` passages per query.
"""

from __future__ import annotations

import functools
import keyword
import math
from dataclasses import dataclass
from typing import Any, Final

import dspy

from dspyops.errors import InvalidArgument, shown
from dspyops.names import check_name
from dspyops.programs.allowlist import parse_ref
from dspyops.programs.errors import ProgramError
from dspyops.programs.signatures import InvalidSignature, parse_fields, parse_signature

STAGE_KINDS: Final = ("Predict", "ChainOfThought", "ReAct", "Retrieve")
MAX_TOOLS: Final = 16
DEFAULT_MAX_ITERS: Final = 5
MAX_ITERS: Final = 20
DEFAULT_TOOL_TIMEOUT: Final = 10.0
MAX_TOOL_TIMEOUT: Final = 300.0
DEFAULT_K: Final = 3
MAX_K: Final = 100
MAX_INSTRUCTIONS_CHARS: Final = 20_000
RETRIEVE_SIGNATURE: Final = "query -> passages"
# what ReAct adds to its own signatures: a stage's fields may not take these names; and
# dspy.ReAct takes an input named max_iters as the call's step limit, which a request would set
_REACT_FIELDS: Final = frozenset(
    {"trajectory", "next_thought", "next_tool_name", "next_tool_args", "max_iters"}
)
# outputs a stage's module returns beyond its signature's, which a later stage may use
_EXTRA_OUTPUTS: Final[dict[str, tuple[str, ...]]] = {
    "ChainOfThought": ("reasoning",),
    "ReAct": ("reasoning", "trajectory"),
}


@functools.lru_cache(maxsize=4096)
def _field_names(signature: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    inputs, outputs = parse_fields(signature)
    return tuple(n for n, _, _ in inputs), tuple(n for n, _, _ in outputs)


def is_identifier(name: str) -> bool:
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


@dataclass(frozen=True)
class StageSpec:
    name: str
    kind: str
    signature: str = ""
    instructions: str = ""
    inputs: tuple[tuple[str, str], ...] = ()  # (this stage's input field, its source), by field
    tools: tuple[str, ...] = ()  # ReAct: "package.module:function"
    max_iters: int = 0  # ReAct: 0 is DEFAULT_MAX_ITERS
    tool_timeout_seconds: float = 0.0  # ReAct: 0 is DEFAULT_TOOL_TIMEOUT
    corpus: str = ""  # Retrieve
    k: int = 0  # Retrieve: 0 is DEFAULT_K

    # ---------------------------------------------------------------- what it is

    @property
    def effective_signature(self) -> str:
        return RETRIEVE_SIGNATURE if self.kind == "Retrieve" else self.signature

    @property
    def effective_max_iters(self) -> int:
        return self.max_iters or DEFAULT_MAX_ITERS

    @property
    def effective_tool_timeout(self) -> float:
        return self.tool_timeout_seconds or DEFAULT_TOOL_TIMEOUT

    @property
    def effective_k(self) -> int:
        return self.k or DEFAULT_K

    def input_fields(self) -> tuple[str, ...]:
        return _field_names(self.effective_signature)[0]

    def output_fields(self) -> tuple[str, ...]:
        return _field_names(self.effective_signature)[1]

    def extra_outputs(self) -> tuple[str, ...]:
        """Outputs its module returns beyond the signature's (a later stage may wire them;
        nothing has to)."""
        return _EXTRA_OUTPUTS.get(self.kind, ())

    def signature_class(self) -> type[dspy.Signature]:
        return parse_signature(self.effective_signature, self.instructions or None)

    # ---------------------------------------------------------------- checks

    def check(self, where: str) -> None:
        """Everything the stage says on its own; ``where`` is its field path
        (``pipeline.stages[2]``)."""
        if not is_identifier(self.name) or self.name.startswith("_") or len(self.name) > 64:
            raise ProgramError(
                f"{where}.name",
                f"{shown(self.name)} is not a stage name: a Python identifier of at most 64 characters, "
                "not starting with '_'",
            )
        if self.kind not in STAGE_KINDS:
            raise ProgramError(
                f"{where}.kind",
                f"unknown stage kind {shown(self.kind)} for stage {self.name!r}; "
                f"known: {', '.join(STAGE_KINDS)}",
            )
        if not isinstance(self.instructions, str) or len(self.instructions) > MAX_INSTRUCTIONS_CHARS:
            raise ProgramError(f"{where}.instructions", f"at most {MAX_INSTRUCTIONS_CHARS} characters")
        self._check_signature(where)
        self._check_settings(where)

    def _check_signature(self, where: str) -> None:
        if self.kind == "Retrieve":
            if self.signature and " ".join(self.signature.split()) != RETRIEVE_SIGNATURE:
                raise ProgramError(
                    f"{where}.signature",
                    f"a Retrieve stage's signature is {RETRIEVE_SIGNATURE!r} (or empty), "
                    f"got {shown(self.signature)}",
                )
            return
        try:
            inputs, outputs = _field_names(self.signature)
            parse_signature(self.signature, self.instructions or None)
        except InvalidSignature as exc:
            raise ProgramError(f"{where}.signature", f"stage {self.name!r}: {exc.problem}") from None
        if self.kind == "ReAct":
            clash = sorted(_REACT_FIELDS & {*inputs, *outputs})
            if clash:
                raise ProgramError(
                    f"{where}.signature",
                    f"stage {self.name!r}: ReAct uses the field names {clash} itself; rename them",
                )
        if self.kind in _EXTRA_OUTPUTS:
            clash = sorted(set(_EXTRA_OUTPUTS[self.kind]) & {*inputs, *outputs})
            if clash:
                raise ProgramError(
                    f"{where}.signature",
                    f"stage {self.name!r}: a {self.kind} stage adds the fields {clash} itself; rename them",
                )

    def _check_settings(self, where: str) -> None:
        react, retrieve = self.kind == "ReAct", self.kind == "Retrieve"
        if not react:
            settings: tuple[tuple[str, object], ...] = (
                ("tools", self.tools),
                ("max_iters", self.max_iters),
                ("tool_timeout_seconds", self.tool_timeout_seconds),
            )
            for name, value in settings:
                if value:
                    raise ProgramError(
                        f"{where}.{name}", f"only a ReAct stage takes {name} (stage {self.name!r})"
                    )
        if not retrieve:
            for name, value in (("corpus", self.corpus), ("k", self.k)):
                if value:
                    raise ProgramError(
                        f"{where}.{name}", f"only a Retrieve stage takes {name} (stage {self.name!r})"
                    )
        if react:
            if not self.tools:
                raise ProgramError(
                    f"{where}.tools", f"a ReAct stage needs at least one tool (stage {self.name!r})"
                )
            if len(self.tools) > MAX_TOOLS:
                raise ProgramError(f"{where}.tools", f"at most {MAX_TOOLS} tools, got {len(self.tools)}")
            for i, tool in enumerate(self.tools):
                parse_ref(tool, f"{where}.tools[{i}]", "function")
            if not (isinstance(self.max_iters, int) and 0 <= self.max_iters <= MAX_ITERS):
                raise ProgramError(
                    f"{where}.max_iters",
                    f"must be in [1, {MAX_ITERS}] (0: {DEFAULT_MAX_ITERS}), got {self.max_iters}",
                )
            timeout = self.tool_timeout_seconds
            if not (math.isfinite(timeout) and 0 <= timeout <= MAX_TOOL_TIMEOUT):
                raise ProgramError(
                    f"{where}.tool_timeout_seconds",
                    f"must be in (0, {MAX_TOOL_TIMEOUT:g}] seconds (0: {DEFAULT_TOOL_TIMEOUT:g}), "
                    f"got {timeout}",
                )
        if retrieve:
            try:
                check_name("corpus", self.corpus)
            except InvalidArgument as exc:
                raise ProgramError(f"{where}.corpus", f"stage {self.name!r}: {exc.problem}") from None
            if not (isinstance(self.k, int) and 0 <= self.k <= MAX_K):
                raise ProgramError(f"{where}.k", f"must be in [1, {MAX_K}] (0: {DEFAULT_K}), got {self.k}")

    # ---------------------------------------------------------------- as JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "signature": self.signature,
            "instructions": self.instructions,
            "inputs": dict(self.inputs),
            "tools": list(self.tools),
            "max_iters": self.max_iters,
            "tool_timeout_seconds": self.tool_timeout_seconds,
            "corpus": self.corpus,
            "k": self.k,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str) -> StageSpec:
        if not isinstance(d, dict):
            raise ProgramError(where, "must be a JSON object")
        unknown = set(d) - _STAGE_KEYS
        if unknown:
            raise ProgramError(where, f"unknown keys {shown(sorted(unknown))}")
        for key in ("name", "kind", "signature", "instructions", "corpus"):
            if not isinstance(d.get(key, ""), str):
                raise ProgramError(f"{where}.{key}", "must be a string")
        inputs = d.get("inputs", {})
        if not isinstance(inputs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in inputs.items()
        ):
            raise ProgramError(f"{where}.inputs", "must map field names to sources (strings)")
        tools = d.get("tools", [])
        if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
            raise ProgramError(f"{where}.tools", "must be a list of strings")
        for key in ("max_iters", "k"):
            value = d.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ProgramError(f"{where}.{key}", "must be an integer")
        timeout = d.get("tool_timeout_seconds", 0.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ProgramError(f"{where}.tool_timeout_seconds", "must be a number")
        return cls(
            name=d.get("name", ""),
            kind=d.get("kind", ""),
            signature=d.get("signature", ""),
            instructions=d.get("instructions", ""),
            inputs=tuple(sorted(inputs.items())),
            tools=tuple(tools),
            max_iters=d.get("max_iters", 0),
            tool_timeout_seconds=float(timeout),
            corpus=d.get("corpus", ""),
            k=d.get("k", 0),
        )


_STAGE_KEYS: Final = frozenset(StageSpec.__dataclass_fields__)

__all__ = [
    "DEFAULT_K",
    "DEFAULT_MAX_ITERS",
    "DEFAULT_TOOL_TIMEOUT",
    "MAX_ITERS",
    "MAX_K",
    "MAX_TOOLS",
    "MAX_TOOL_TIMEOUT",
    "RETRIEVE_SIGNATURE",
    "STAGE_KINDS",
    "StageSpec",
    "is_identifier",
]
