"""The offline engine (model ``offline/nearest-demo``, the built-in ``offline`` connection).

A deterministic DSPy custom engine (``dspy.LM(model, engine=..., async_engine=...)``):
no network, and the same request always gets the same answer. It reads the prompt that
DSPy's ChatAdapter or JSONAdapter built and answers like a (very small) model would:

1. **Parse.** The system message lists the input and output fields
   (``1. `label` (Literal['a', 'b']): ...``), with Literal choices when the type has them,
   and the instructions after "your objective is:". Few-shot demos arrive as earlier
   user/assistant message pairs, each holding ``[[ ## field ## ]]`` sections (ChatAdapter)
   or a JSON object (JSONAdapter replies). The last user message holds the current inputs.
2. **Answer task prompts from the nearest demo.** Similarity is the Jaccard index of the
   content-word sets (lower-cased, stop words dropped, light suffix stemming) of the input
   field texts; ties go to the earlier demo. Every output field the nearest demo supplies
   is copied from it; ``reasoning`` is a short sentence naming the chosen demo. Few-shot
   optimizers therefore make real, measurable progress.
3. **No demos.** A field with Literal choices gets the choice named in the input, else a
   choice picked by a stable hash. Free-text fields (reasoning, summary, ...) get a short
   echo of the input. Other fields get a content word from the input (a weak guess, as it
   should be), or a neutral value for typed fields (``0``, ``False``, ``[]``).
4. **Instruction-proposal prompts** (MIPROv2's GroundedProposer and dataset/program
   describers, COPRO's instruction generators: outputs such as ``proposed_instruction``,
   ``proposed_prefix_for_output_field``, ``program_description``, ``observations``,
   ``summary``) get plausible variants of the task's current instruction, chosen by a
   counter hashed from the prompt, so those optimizers run end to end.

A raw call that is not an adapter prompt (``lm("hello")``) gets a short plain-text echo.
The reply to an adapter prompt is always in the format the adapter parses:
``[[ ## field ## ]]`` sections ending with ``[[ ## completed ## ]]`` for ChatAdapter, a JSON
object for JSONAdapter (or when the request asks for a response_format). Usage reports
whitespace token counts of prompt and reply. ``latency_ms`` adds a fixed per-call delay
(``time.sleep`` in the sync engine, ``asyncio.sleep`` in the async one) for benchmarks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from dspy.lm15 import Message, Request, Response, TextPart, Usage, response_to_events

OFFLINE_MODEL: Final = "offline/nearest-demo"


# --------------------------------------------------------------------------------------
# Prompt parsing
# --------------------------------------------------------------------------------------

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


def _system_text(request: Request) -> str:
    if request.system is None:
        return ""
    if isinstance(request.system, str):
        return request.system
    return "".join(getattr(part, "text", "") or "" for part in request.system)


def parse_prompt(system: str, messages: list[tuple[str, str]]) -> ParsedPrompt:
    """Read an adapter-built prompt: field lists, instructions, demos and the current inputs."""
    prompt = ParsedPrompt(
        inputs=_field_block(system, "Your input fields are:", "Your output fields are:"),
        outputs=_field_block(system, "Your output fields are:", "All interactions will be structured"),
    )
    marker = "your objective is:"
    at = system.find(marker)
    if at >= 0:
        prompt.instructions = " ".join(system[at + len(marker) :].split())
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


# --------------------------------------------------------------------------------------
# Answering
# --------------------------------------------------------------------------------------

_STOP_WORDS: Final = frozenset(
    """a about above after again all am an and any are as at be been before being below between both but by
    can could did do does doing down during each few for from further had has have having he her here hers him
    his how i if in into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours out over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which while who whom why
    will with would you your yours yourself hi hello thanks thank please hey""".split()
)
_WORD_RE: Final = re.compile(r"[a-z0-9]+")
# Output fields answered with prose rather than a label-like word when there is no demo.
_FREE_TEXT_FIELDS: Final = frozenset(
    "reasoning rationale explanation summary observations description analysis thoughts".split()
)
# Output fields only DSPy's instruction proposers ask for (MIPROv2 GroundedProposer, COPRO).
_PROPOSAL_FIELDS: Final = frozenset(
    {"proposed_instruction", "proposed_prefix_for_output_field", "program_description", "module_description"}
)
# The dataset describers' outputs are common words, so they also need their proposer inputs.
_DESCRIBER_SIGNATURES: Final = (
    (frozenset({"observations"}), frozenset({"examples"})),
    (frozenset({"observations"}), frozenset({"examples", "prior_observations"})),
    (frozenset({"summary"}), frozenset({"observations"})),
)


# Longest first: the first suffix that leaves a stem of 3+ letters is stripped.
_SUFFIXES: Final = tuple("ations ation ments ment ings ing ies ied ed es er ly s y e".split())


def _stem(word: str) -> str:
    # Light suffix stripping (two passes) so "charged"/"charges"/"charge" and
    # "delivery"/"delivered" meet; crude next to Porter, but deterministic and cheap.
    for _ in range(2):
        for suffix in _SUFFIXES:
            if len(word) - len(suffix) >= 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
    return word


def content_words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD_RE.findall(text.lower()) if w not in _STOP_WORDS]


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
    words = [w for w in _WORD_RE.findall(inputs_text.lower()) if w not in _STOP_WORDS]
    return max(words, key=len) if words else "unknown"  # longest content word; first wins ties


_INSTRUCTION_VARIANTS: Final = (
    "Read every input field carefully, then answer with the most fitting value.",
    "Think about what the input is really asking before you answer; be concise.",
    "Compare the input with similar cases you know and answer consistently with them.",
    "Answer precisely and use the exact wording the output format asks for.",
    "Focus on the key facts in the input and ignore pleasantries and filler.",
    "Decide step by step, then give only the final value for each output field.",
)
_PREFIX_VARIANTS: Final = ("Answer:", "Final answer:", "Result:", "Output:")


def _base_instruction(prompt: ParsedPrompt) -> str:
    """The task's current instruction, with any variant sentence we added earlier removed."""
    current = prompt.current
    base = ""
    if current.get("basic_instruction"):
        base = current["basic_instruction"]
    elif current.get("attempted_instructions"):
        # COPRO lists attempts in increasing score order, as "[n] «Instruction #k: ...»"
        # items (DSPy's list formatting): build on the last, best, one.
        found = re.findall(
            r"Instruction #\d+:\s*(.+?)»?\s*$", current["attempted_instructions"], re.MULTILINE
        )
        base = found[-1] if found else ""
    base = " ".join(base.split())
    for variant in _INSTRUCTION_VARIANTS:  # variants replace each other instead of piling up
        base = base.replace(variant, "")
    base = " ".join(base.split()).rstrip(". ")
    return base or "Given the input fields, produce the output fields"


def _proposal_value(name: str, prompt: ParsedPrompt, counter: int) -> str:
    base = _base_instruction(prompt)
    if name == "proposed_instruction":
        # Start at the hashed counter and skip variants the prompt already shows as tried,
        # so COPRO's later rounds propose something new.
        seen = "\n".join(prompt.current.values())
        n = len(_INSTRUCTION_VARIANTS)
        order = [_INSTRUCTION_VARIANTS[(counter + i) % n] for i in range(n)]
        variant = next((v for v in order if v not in seen), order[0])
        return f"{base}. {variant}"
    if name == "proposed_prefix_for_output_field":
        return _PREFIX_VARIANTS[counter % len(_PREFIX_VARIANTS)]
    if name == "program_description":
        return (
            "The program calls a language model once per input: it reads the input fields and "
            "produces the output fields, such as a short label or answer."
        )
    if name == "module_description":
        return "This module maps the program's inputs directly to its outputs with a single prediction."
    if name == "observations":
        sample = prompt.current.get("examples", "")
        return (
            "The examples are short texts paired with a short output value. "
            f"A typical input looks like: {_short(sample, 10)}"
        )
    return "The data consists of short inputs paired with short, categorical outputs."


def _is_proposal(prompt: ParsedPrompt) -> bool:
    """An instruction-proposal or describer prompt, as opposed to a task prompt with such field names."""
    outputs = frozenset(f.name for f in prompt.outputs)
    inputs = frozenset(f.name for f in prompt.inputs)
    if prompt.demos or not outputs:
        return False
    return outputs <= _PROPOSAL_FIELDS or (outputs, inputs) in _DESCRIBER_SIGNATURES


def answer(prompt: ParsedPrompt, prompt_key: str) -> dict[str, Any]:
    """Output field values for a parsed prompt; pure and deterministic."""
    outputs = prompt.outputs or [FieldInfo("answer")]
    input_names = [f.name for f in prompt.inputs] or list(prompt.current)
    inputs_text = "\n".join(prompt.current.get(n, "") for n in input_names)

    if _is_proposal(prompt):
        counter = _stable_index(prompt_key, 1 << 30)
        return {f.name: _proposal_value(f.name, prompt, counter) for f in outputs}

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
        if info.name == "reasoning":
            if ranked:
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
