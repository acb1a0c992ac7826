"""The offline engine: DSPy custom engines for ``offline/nearest-demo`` (see the package docstring).

``complete_offline`` is the whole model, a pure function of the request; ``OfflineEngine`` and
``AsyncOfflineEngine`` are the sync and async engines ``dspy.LM(..., engine=...)`` calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Final

from dspy.lm15 import Message, Request, Response, TextPart, Usage, response_to_events

from dspyops.offline.prompt import FieldInfo, ParsedPrompt, parse_prompt
from dspyops.offline.proposals import is_proposal, proposal_value
from dspyops.offline.rules import Applied, apply_rules, parse_rules
from dspyops.offline.words import content_words, surface_words

OFFLINE_MODEL: Final = "offline/nearest-demo"


def _system_text(request: Request) -> str:
    if request.system is None:
        return ""
    if isinstance(request.system, str):
        return request.system
    return "".join(getattr(part, "text", "") or "" for part in request.system)


# --------------------------------------------------------------------------------------
# Answering
# --------------------------------------------------------------------------------------

# Output fields answered with prose rather than a label-like word when there is no demo.
_FREE_TEXT_FIELDS: Final = frozenset(
    "reasoning rationale explanation summary observations description analysis thoughts".split()
)


def _similarity(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _stable_index(key: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % n


def _short(text: str, words: int = 12) -> str:
    parts = " ".join(text.split()).split(" ")
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")


def _neutral_value(info: FieldInfo, inputs_text: str) -> Any:
    """The no-demo guess for one output field: weak on purpose, but well-formed for its type."""
    t = info.type.replace(" ", "").lower()
    if info.choices:
        lowered = inputs_text.lower()
        named = [c for c in info.choices if re.search(rf"\b{re.escape(c.lower())}\b", lowered)]
        if named:
            return named[0]
        return info.choices[_stable_index(info.name + "\x00" + inputs_text, len(info.choices))]
    if t == "bool":
        return False
    if t == "int":
        return 0
    if t == "float":
        return 0.0
    if t.startswith(("list", "tuple")):
        return []
    if t.startswith("dict"):
        return {}
    if info.name in _FREE_TEXT_FIELDS:
        return f"The input says: {_short(inputs_text)}" if inputs_text.strip() else "No input was given."
    words = surface_words(inputs_text)
    return max(words, key=len) if words else "unknown"  # longest content word; first wins ties


def _rule_reasoning(applied: Applied, output: str) -> str:
    return (
        f"The input mentions {', '.join(repr(k) for k in applied.matched)}, and the instruction says: "
        f'"{applied.rule.text()}" So the {output} is {applied.value}.'
    )


def answer(prompt: ParsedPrompt, prompt_key: str) -> dict[str, Any]:
    """Output field values for a parsed prompt; pure and deterministic."""
    outputs = prompt.outputs or [FieldInfo("answer")]
    input_names = [f.name for f in prompt.inputs] or list(prompt.current)
    inputs_text = "\n".join(prompt.current.get(n, "") for n in input_names)

    if is_proposal(prompt):
        counter = _stable_index(prompt_key, 1 << 30)
        return {f.name: proposal_value(f.name, prompt, counter) for f in outputs}

    # Rules in the instruction come first, field by field.
    rules = parse_rules(prompt.instructions)
    all_outputs = frozenset(f.name.lower() for f in outputs)
    current_inputs = {n: prompt.current.get(n, "") for n in input_names}
    applied: dict[str, Applied] = {}
    for info in outputs:
        if rules and info.name != "reasoning":
            hit = apply_rules(rules, current_inputs, info.name, info.choices, all_outputs)
            if hit is not None:
                applied[info.name] = hit

    query = set(content_words(inputs_text))
    ranked: list[tuple[float, int]] = []
    for index, (demo_inputs, _) in enumerate(prompt.demos):
        demo_text = "\n".join(demo_inputs.get(n, "") for n in input_names)
        ranked.append((_similarity(query, set(content_words(demo_text))), index))
    # Highest similarity first; the earlier demo wins a tie (stable sort on -score).
    ranked.sort(key=lambda pair: (-pair[0], pair[1]))

    values: dict[str, Any] = {}
    for info in outputs:
        chosen = next(((s, i) for s, i in ranked if info.name in prompt.demos[i][1]), None)
        if info.name in applied:
            values[info.name] = applied[info.name].value
        elif info.name == "reasoning":
            if applied:
                name, hit = next(iter(applied.items()))
                values[info.name] = _rule_reasoning(hit, name)
            elif ranked:
                score, index = ranked[0]
                demo_text = " ".join(prompt.demos[index][0].get(n, "") for n in input_names)
                values[info.name] = (
                    f"This input is most similar (overlap {score:.2f}) to the example "
                    f'"{_short(demo_text)}", so I answer the same way.'
                )
            else:
                values[info.name] = _neutral_value(info, inputs_text)
        elif chosen is not None:
            values[info.name] = prompt.demos[chosen[1]][1][info.name]
        else:
            values[info.name] = _neutral_value(info, inputs_text)
    return values


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _as_json_value(value: Any, info: FieldInfo) -> Any:
    # Demo values parsed from chat sections are strings; typed fields want JSON values.
    if isinstance(value, str) and info.type.replace(" ", "") not in ("str", "") and not info.choices:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def format_completion(prompt: ParsedPrompt, values: dict[str, Any]) -> str:
    outputs = prompt.outputs or [FieldInfo(name) for name in values]
    if prompt.json_mode:
        return json.dumps(
            {f.name: _as_json_value(values[f.name], f) for f in outputs}, ensure_ascii=False, indent=2
        )
    parts = [f"[[ ## {f.name} ## ]]\n{_as_text(values[f.name])}" for f in outputs]
    return "\n\n".join([*parts, "[[ ## completed ## ]]"])


def _count_tokens(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class _Completion:
    text: str
    input_tokens: int
    output_tokens: int


def complete_offline(request: Request) -> _Completion:
    """The whole offline model: request -> completion text. Pure function of the request."""
    system = _system_text(request)
    messages = [(m.role, m.text or "") for m in request.messages]
    prompt = parse_prompt(system, messages)
    if request.config.response_format is not None:
        prompt.json_mode = True  # structured-output requests want a bare JSON object
    if not prompt.outputs and not prompt.current:
        # A raw call such as lm("hello"), not an adapter prompt: reply in plain text.
        last = next((t for role, t in reversed(messages) if role == "user"), "")
        text = f"(offline model, no demonstrations) {_short(last, 30)}".rstrip()
        return _Completion(
            text, _count_tokens(system) + sum(_count_tokens(t) for _, t in messages), _count_tokens(text)
        )
    key_material = json.dumps([system, messages, request.config.temperature], ensure_ascii=False)
    text = format_completion(prompt, answer(prompt, key_material))
    prompt_tokens = _count_tokens(system) + sum(_count_tokens(t) for _, t in messages)
    return _Completion(text, prompt_tokens, _count_tokens(text))


def _response(completion: _Completion) -> Response:
    return Response(
        id=None,
        model=OFFLINE_MODEL,
        message=Message.assistant([TextPart(completion.text)]),
        finish_reason="stop",
        usage=Usage(input_tokens=completion.input_tokens, output_tokens=completion.output_tokens),
    )


class OfflineEngine:
    """Synchronous DSPy custom engine for ``offline/nearest-demo`` (see the module docstring)."""

    def __init__(self, latency_ms: int = 0) -> None:
        if latency_ms < 0:
            raise ValueError("latency_ms: must be >= 0")
        self.latency_ms = latency_ms

    def complete(self, request: Request) -> Response:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        return _response(complete_offline(request))

    def stream(self, request: Request) -> Iterator[Any]:
        return iter(response_to_events(self.complete(request)))

    def close(self) -> None:
        pass

    # Lets `module.save(..., save_program=False)` with this LM attached round-trip.
    def dump_state(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms}

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> OfflineEngine:
        return cls(latency_ms=int(state.get("latency_ms", 0)))


class AsyncOfflineEngine:
    """Async twin of ``OfflineEngine``: the latency is an ``asyncio.sleep``, so calls overlap."""

    def __init__(self, sync: OfflineEngine | None = None, *, latency_ms: int | None = None) -> None:
        self.sync = sync or OfflineEngine(latency_ms=latency_ms or 0)
        self.latency_ms = self.sync.latency_ms if latency_ms is None else latency_ms

    async def complete(self, request: Request) -> Response:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        return _response(complete_offline(request))

    async def stream(self, request: Request) -> AsyncIterator[Any]:
        for event in response_to_events(await self.complete(request)):
            yield event

    async def aclose(self) -> None:
        pass

    def dump_state(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms}

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> AsyncOfflineEngine:
        return cls(latency_ms=int(state.get("latency_ms", 0)))
