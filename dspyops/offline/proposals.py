"""Answers to the prompts DSPy's optimizers send to write or describe instructions.

MIPROv2 (dataset describer, observation summarizer, program/module describers, grounded
proposer), COPRO (instruction generators), GEPA (ProposeInstruction) and InferRules (rule
induction). When the prompt carries labelled examples, keyword rules are mined from them
(``mining``) and written into the proposal; the rules travel on through the describer's
observations and the summary into MIPROv2's proposer. Without examples (COPRO) the proposal
is the current instruction with a rotating advice sentence.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from dspyops.offline.mining import PER_LABEL, Labeled, merge_rules, mine_rules, read_examples
from dspyops.offline.prompt import ParsedPrompt
from dspyops.offline.rules import Rule, parse_rules, rules_text, strip_rules

# Output fields only DSPy's instruction proposers ask for.
_PROPOSAL_FIELDS: Final = frozenset(
    {
        "proposed_instruction",  # MIPROv2 GroundedProposer, COPRO
        "proposed_prefix_for_output_field",  # COPRO
        "program_description",  # MIPROv2 DescribeProgram
        "module_description",  # MIPROv2 DescribeModule
        "new_instruction",  # GEPA ProposeInstruction
    }
)
# Describers whose outputs are common words: recognised with their inputs too.
_DESCRIBER_SIGNATURES: Final[tuple[tuple[frozenset[str], frozenset[str]], ...]] = (
    (frozenset({"observations"}), frozenset({"examples"})),
    (frozenset({"observations"}), frozenset({"examples", "prior_observations"})),
    (frozenset({"summary"}), frozenset({"observations"})),
    (frozenset({"reasoning", "natural_language_rules"}), frozenset({"examples_text"})),  # InferRules
    (frozenset({"natural_language_rules"}), frozenset({"examples_text"})),
    (frozenset({"discussion", "module_advice"}), frozenset()),  # SIMBA OfferFeedback (inputs vary)
)

INSTRUCTION_VARIANTS: Final = (
    "Read every input field carefully, then answer with the most fitting value.",
    "Think about what the input is really asking before you answer; be concise.",
    "Compare the input with similar cases you know and answer consistently with them.",
    "Answer precisely and use the exact wording the output format asks for.",
    "Focus on the key facts in the input and ignore pleasantries and filler.",
    "Decide step by step, then give only the final value for each output field.",
)
_PREFIX_VARIANTS: Final = ("Answer:", "Final answer:", "Result:", "Output:")
# MIPROv2 proposes several candidates from one summary: they differ in how many keywords
# per label they keep, so its search has real choices to make (more is usually, not always, better).
_KEYWORD_CAPS: Final = (PER_LABEL, 5, PER_LABEL, 3, 6, 2)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _simba_example(prompt: ParsedPrompt) -> Labeled | None:
    inputs = _json_object(prompt.current.get("program_inputs", ""))
    labels = _json_object(prompt.current.get("oracle_metadata", ""))
    if not inputs or not labels:
        return None
    as_text = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in inputs.items()}
    return Labeled(as_text, {str(k): str(v) for k, v in labels.items()})


def _module_names(prompt: ParsedPrompt) -> list[str]:
    try:
        names = json.loads(prompt.current.get("module_names", "[]"))
    except (json.JSONDecodeError, RecursionError):
        names = []
    return [str(n) for n in names] if isinstance(names, list) else []


def is_proposal(prompt: ParsedPrompt) -> bool:
    """An instruction-proposal or describer prompt, as opposed to a task prompt with such field names."""
    outputs = frozenset(f.name for f in prompt.outputs)
    inputs = frozenset(f.name for f in prompt.inputs)
    if prompt.demos or not outputs:
        return False
    return outputs <= _PROPOSAL_FIELDS or any(
        outputs == out and (not need or inputs == need) for out, need in _DESCRIBER_SIGNATURES
    )


def _without_rules(text: str) -> str:
    text = strip_rules(text)
    text = text.replace("Rules that hold in these examples:", " ").replace("Follow these rules:", " ")
    return text


def _base_instruction(prompt: ParsedPrompt) -> str:
    """The task's current instruction, without the variant sentence and rules we added earlier."""
    current = prompt.current
    base = current.get("basic_instruction") or current.get("current_instruction") or ""
    if not base and current.get("attempted_instructions"):
        # COPRO lists attempts in increasing score order, as "[n] «Instruction #k: ...»"
        # items (DSPy's list formatting): build on the last, best, one.
        found = re.findall(
            r"Instruction #\d+:\s*(.+?)»?\s*$", current["attempted_instructions"], re.MULTILINE
        )
        base = found[-1] if found else ""
    base = " ".join(_without_rules(base).split())
    for variant in INSTRUCTION_VARIANTS:  # variants replace each other instead of piling up
        base = base.replace(variant, "")
    base = " ".join(base.split()).rstrip(". ")
    return base or "Given the input fields, produce the output fields"


def _current_rules(prompt: ParsedPrompt, *names: str) -> list[Rule]:
    return [rule for name in names for rule in parse_rules(prompt.current.get(name, ""))]


def _capped(rules: list[Rule], cap: int) -> list[Rule]:
    return [Rule(r.subject, r.keywords[:cap], r.output, r.value) for r in rules]


def _with_rules(base: str, rules: list[Rule], variant: str) -> str:
    if not rules:
        return f"{base}. {variant}"
    return f"{base}. Follow these rules:\n" + "\n".join(r.text() for r in rules) + f"\n{variant}"


def proposal_value(name: str, prompt: ParsedPrompt, counter: int) -> str:
    """One output field of a proposal prompt; ``counter`` (hashed from the prompt) picks variants."""
    base = _base_instruction(prompt)
    seen = "\n".join(prompt.current.values())
    n = len(INSTRUCTION_VARIANTS)
    order = [INSTRUCTION_VARIANTS[(counter + i) % n] for i in range(n)]
    # Skip variants the prompt already shows as tried, so COPRO's later rounds propose something new.
    variant = next((v for v in order if v not in seen), order[0])
    if name == "proposed_instruction":
        # MIPROv2: the rules arrive in the dataset summary; the current instruction's own rules stay.
        rules = merge_rules(_current_rules(prompt, "basic_instruction", "dataset_description"))
        return _with_rules(base, _capped(rules, _KEYWORD_CAPS[counter % len(_KEYWORD_CAPS)]), variant)
    if name == "new_instruction":
        # GEPA: the current instruction's rules, revised with those mined from the reflective
        # dataset (an example's expected label from the feedback, or its output when correct).
        mined = mine_rules(read_examples(prompt.current))
        rules = merge_rules(_current_rules(prompt, "current_instruction") + mined)
        return _with_rules(base, rules, variant)
    if name == "natural_language_rules":
        rules = mine_rules(read_examples(prompt.current))
        return "\n".join(r.text() for r in rules) or "Answer consistently with the examples."
    if name == "reasoning":
        examples = read_examples(prompt.current)
        return (
            f"From {len(examples)} examples I counted, per label, the words of its inputs "
            "that occur more in its examples than in other labels'."
        )
    if name in ("module_advice", "discussion"):
        # SIMBA: one training example, its inputs and (in oracle_metadata) its expected outputs.
        example = _simba_example(prompt)
        rules = mine_rules([example]) if example else []
        if name == "discussion":
            return f"The better trajectory matched the expected outputs; {len(rules)} keyword rule(s) follow."
        advice = "\n".join(r.text() for r in rules) or variant
        return json.dumps({module: advice for module in _module_names(prompt)})
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
        examples = read_examples(prompt.current)
        rules = mine_rules(examples)
        if rules:
            return (
                f"The {len(examples)} examples pair short inputs with a label. "
                f"Rules that hold in these examples: {rules_text(rules)}"
            )
        return (
            "The examples are short texts paired with a short output value. "
            f"A typical input looks like: {' '.join(prompt.current.get('examples', '').split()[:10])}"
        )
    if name == "summary":
        # The observations of every batch, concatenated by DSPy: their rules merged into one per label.
        rules = merge_rules(_current_rules(prompt, "observations"))
        if rules:
            return f"Each input is a short text with one label. Rules found in the data: {rules_text(rules)}"
    return "The data consists of short inputs paired with short, categorical outputs."
