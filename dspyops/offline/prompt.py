"""Reading the prompt DSPy's ChatAdapter or JSONAdapter built.

The system message lists the input and output fields (``1. `label` (Literal['a', 'b']): ...``),
with Literal choices when the type has them, and the instructions after "your objective is:".
Few-shot demos arrive as earlier user/assistant message pairs, each holding ``[[ ## field ## ]]``
sections (ChatAdapter) or a JSON object (JSONAdapter replies). The last user message holds
the current inputs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

_SECTION_RE: Final = re.compile(r"^\[\[ ## (\w+) ## \]\]\s*$", re.MULTILINE)
_FIELD_LINE_RE: Final = re.compile(r"^\d+\. `(\w+)` \((.*)\):", re.MULTILINE)
_LITERAL_RE: Final = re.compile(r"Literal\[(.*)\]")
_NOT_SUPPLIED: Final = "Not supplied for this particular example."
_JSON_MARKERS: Final = ("Outputs will be a JSON object", "Respond with a JSON object")


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str = "str"
    choices: tuple[str, ...] = ()


@dataclass
class ParsedPrompt:
    inputs: list[FieldInfo] = field(default_factory=list)
    outputs: list[FieldInfo] = field(default_factory=list)
    instructions: str = ""
    demos: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    current: dict[str, str] = field(default_factory=dict)
    json_mode: bool = False


def _literal_choices(type_text: str) -> tuple[str, ...]:
    match = _LITERAL_RE.search(type_text)
    if not match:
        return ()
    choices = re.findall(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", match.group(1))
    return tuple(a or b for a, b in choices)


def _field_block(system: str, start: str, stop: str) -> list[FieldInfo]:
    begin = system.find(start)
    if begin < 0:
        return []
    end = system.find(stop, begin + len(start))
    block = system[begin : end if end >= 0 else len(system)]
    return [
        FieldInfo(name, type_text.strip(), _literal_choices(type_text))
        for name, type_text in _FIELD_LINE_RE.findall(block)
    ]


def parse_sections(text: str) -> dict[str, str]:
    """``[[ ## name ## ]]`` sections of a message, in order (``completed`` dropped)."""
    matches = list(_SECTION_RE.finditer(text))
    sections: dict[str, str] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        name = match.group(1)
        if name != "completed":
            sections[name] = text[match.end() : end].strip()
    return sections


def _strip_response_hint(text: str) -> str:
    # The last user message ends with "Respond with ..." after the last input section.
    cut = re.search(r"\n\s*Respond with (the corresponding output fields|a JSON object)", text)
    return text[: cut.start()] if cut else text


def _parse_json_object(text: str) -> dict[str, Any] | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def parse_prompt(system: str, messages: list[tuple[str, str]]) -> ParsedPrompt:
    """Read an adapter-built prompt: field lists, instructions, demos and the current inputs."""
    prompt = ParsedPrompt(
        inputs=_field_block(system, "Your input fields are:", "Your output fields are:"),
        outputs=_field_block(system, "Your output fields are:", "All interactions will be structured"),
    )
    marker = "your objective is:"
    at = system.find(marker)
    if at >= 0:
        # Whitespace collapsed within lines; line breaks kept, since they end rule sentences.
        lines = (" ".join(line.split()) for line in system[at + len(marker) :].splitlines())
        prompt.instructions = "\n".join(line for line in lines if line)
    last_user = next((text for role, text in reversed(messages) if role == "user"), "")
    prompt.json_mode = any(m in system or m in last_user for m in _JSON_MARKERS)
    prompt.current = parse_sections(_strip_response_hint(last_user))

    # Demos: each user message followed by an assistant reply, before the final user message.
    history = messages[:-1] if messages and messages[-1][0] == "user" else messages
    for i in range(len(history) - 1):
        (role_a, text_a), (role_b, text_b) = history[i], history[i + 1]
        if role_a != "user" or role_b != "assistant":
            continue
        demo_inputs = parse_sections(text_a)
        demo_outputs: dict[str, Any] = dict(parse_sections(text_b))
        if not demo_outputs:
            demo_outputs = _parse_json_object(text_b) or {}
        demo_outputs = {
            k: v
            for k, v in demo_outputs.items()
            if not (isinstance(v, str) and v.strip().startswith(_NOT_SUPPLIED))
        }
        if demo_inputs and demo_outputs:
            prompt.demos.append((demo_inputs, demo_outputs))

    if not prompt.inputs:
        prompt.inputs = [FieldInfo(name) for name in prompt.current]
    return prompt
