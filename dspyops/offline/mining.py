"""Mining keyword rules from the labelled examples a proposal prompt carries.

Only what the prompt holds is used: the engine never sees a dataset of its own. The examples
come in the shapes DSPy's proposers write them (``read_examples``); the mining is plain
counting (``mine_rules``), written by hand because it is a dozen lines and must stay
deterministic and explainable; a library classifier would be neither smaller nor clearer.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from dspyops.offline.rules import Rule
from dspyops.offline.words import stem, surface_words

PER_LABEL: Final = 8  # keywords kept per label and rule
MAX_EXAMPLES: Final = 200  # examples read from one prompt (bounded work per call)
_LABEL_MAX_CHARS: Final = 40  # longer output values are prose, not labels: no rule for them


@dataclass(frozen=True)
class Labeled:
    inputs: dict[str, str]
    outputs: dict[str, str]


def _texts(mapping: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in mapping.items()}


# MIPROv2's dataset describer: the repr of a list of dspy.Example, e.g.
# "[Example({'text': '...', 'label': 'billing'}) (input_keys={'text'}), ...]".
_EXAMPLE_REPR_RE: Final = re.compile(r"Example\((\{.*?\})\)\s*\(input_keys=\{([^}]*)\}\)", re.DOTALL)


def _from_example_reprs(text: str) -> list[Labeled]:
    found: list[Labeled] = []
    for match in _EXAMPLE_REPR_RE.finditer(text):
        try:
            # literal_eval reads literals only (never calls or names): the repr is data.
            value = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if not isinstance(value, dict):
            continue
        keys = {k.strip().strip("'\"") for k in match.group(2).split(",")}
        fields = _texts(value)
        found.append(
            Labeled(
                {k: v for k, v in fields.items() if k in keys},
                {k: v for k, v in fields.items() if k not in keys},
            )
        )
    return found


# InferRules: "Input Fields:\ntext: ...\n\n=========\nOutput Fields:\nlabel: ...\n\n" per demo.
_FIELD_RE: Final = re.compile(r"^(\w+): (.*)$", re.MULTILINE)


def _from_field_blocks(text: str) -> list[Labeled]:
    found: list[Labeled] = []
    for block in text.split("Input Fields:")[1:]:
        inputs_part, _, outputs_part = block.partition("Output Fields:")
        inputs = dict(_FIELD_RE.findall(inputs_part.split("=========")[0]))
        outputs = dict(_FIELD_RE.findall(outputs_part))
        if inputs and outputs:
            found.append(Labeled(inputs, outputs))
    return found


# GEPA's reflective dataset: a JSON list of {"Inputs", "Generated Outputs", "Feedback"}. The
# job's feedback metric writes "label: expected 'billing', got 'refund'" for each wrong field.
_EXPECTED_RE: Final = re.compile(r"(\w+): expected ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")
_CORRECT_RE: Final = re.compile(r"^\s*Score 1\b|All outputs are correct", re.IGNORECASE)


def _from_feedback(text: str) -> list[Labeled]:
    try:
        records = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return []
    found: list[Labeled] = []
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict) or not isinstance(record.get("Inputs"), dict):
            continue
        generated = record.get("Generated Outputs")
        feedback = str(record.get("Feedback", ""))
        outputs = _texts(generated) if isinstance(generated, dict) else {}
        expected = {name: literal[1:-1] for name, literal in _EXPECTED_RE.findall(feedback)}
        if expected:
            outputs.update(expected)
        elif not _CORRECT_RE.search(feedback):
            continue  # neither the right answer nor a confirmation: nothing to learn from it
        if outputs:
            found.append(Labeled(_texts(record["Inputs"]), outputs))
    return found


def read_examples(current: Mapping[str, str]) -> list[Labeled]:
    """The labelled examples in a proposal prompt's input fields (any of the known shapes)."""
    found: list[Labeled] = []
    for name, text in current.items():
        if name == "examples" or "Example({" in text:
            found += _from_example_reprs(text)
        elif name == "examples_text" or "Input Fields:" in text:
            found += _from_field_blocks(text)
        elif name == "examples_with_feedback" or text.lstrip().startswith("[{"):
            found += _from_feedback(text)
    return found[:MAX_EXAMPLES]


def _label_like(value: str) -> bool:
    return 0 < len(value.strip()) <= _LABEL_MAX_CHARS and len(value.split()) <= 4


def mine_rules(examples: list[Labeled], per_label: int = PER_LABEL) -> list[Rule]:
    """Per output field and label, the words that best tell that label's examples apart.

    For each output field whose values are label-like (at most four words), a word's score
    for a label is the number of that label's examples whose inputs contain it minus the
    number of other labels' examples that do; words scoring above zero are kept, highest
    score first (then more examples, then first seen), ``per_label`` at most. Words are
    compared by stem and written in their most frequent spelling; words shorter than three
    letters and numbers are skipped. One rule per label, labels in order of first appearance.
    """
    input_names = sorted({k for e in examples for k in e.inputs})
    subject = input_names[0] if len(input_names) == 1 else "input"
    rules: list[Rule] = []
    output_names = list(dict.fromkeys(k for e in examples for k in e.outputs))
    for output in output_names:
        labelled = [(e, e.outputs[output].strip()) for e in examples if output in e.outputs]
        if not labelled or not all(_label_like(value) for _, value in labelled):
            continue
        spelling: dict[str, Counter[str]] = {}
        first_seen: dict[str, int] = {}
        docs: list[tuple[str, set[str]]] = []
        for example, value in labelled:
            stems: set[str] = set()
            for word in surface_words(" ".join(example.inputs.values())):
                if len(word) < 3 or not word.isalpha():
                    continue
                s = stem(word)
                stems.add(s)
                spelling.setdefault(s, Counter())[word] += 1
                first_seen.setdefault(s, len(first_seen))
            docs.append((value, stems))
        for label in dict.fromkeys(value for value, _ in docs):
            inside = Counter(s for value, stems in docs if value == label for s in stems)
            outside = Counter(s for value, stems in docs if value != label for s in stems)
            scored = [(inside[s] - outside[s], inside[s], -first_seen[s], s) for s in inside]
            best = sorted((t for t in scored if t[0] > 0), reverse=True)[:per_label]
            keywords = tuple(spelling[s].most_common(1)[0][0] for *_, s in best)
            if keywords:
                rules.append(Rule(subject, keywords, output, label))
    return rules


def merge_rules(rules: list[Rule], per_label: int = PER_LABEL) -> list[Rule]:
    """Rules for the same subject, output and value merged into one.

    A keyword's weight is how many of the given rules list it; a keyword listed for several
    values of one output stays only with the value that lists it most (dropped on a tie), so
    contradicting evidence removes a word instead of keeping both claims. Keywords are kept
    heaviest first (then first seen), ``per_label`` at most; rules in order of first appearance.
    """
    weight: Counter[tuple[str, str, str, str]] = Counter()  # (subject, output, value, stem)
    spelled: dict[str, str] = {}
    order: dict[tuple[str, str, str], int] = {}
    seen_at: dict[tuple[str, str, str, str], int] = {}
    for rule in rules:
        key = (rule.subject, rule.output.lower(), rule.value)
        order.setdefault(key, len(order))
        for keyword in rule.keywords:
            s = " ".join(stem(w) for w in surface_words(keyword)) or keyword.lower()
            spelled.setdefault(s, keyword)
            weight[(*key, s)] += 1
            seen_at.setdefault((*key, s), len(seen_at))
    claims: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
    for (subject, output, value, s), w in weight.items():
        claims.setdefault((subject, output, s), []).append((w, value))
    merged: list[Rule] = []
    for key in sorted(order, key=order.__getitem__):
        subject, output, value = key
        kept = []
        for (sub, out, val, s), w in weight.items():
            if (sub, out, val) != key:
                continue
            rivals = sorted((c for c in claims[(sub, out, s)]), reverse=True)
            if rivals[0][1] == value and (len(rivals) == 1 or rivals[1][0] < w):
                kept.append((-w, seen_at[(sub, out, val, s)], spelled[s]))
        keywords = tuple(word for *_, word in sorted(kept)[:per_label])
        if keywords:
            original = next(r.output for r in rules if (r.subject, r.output.lower(), r.value) == key)
            merged.append(Rule(subject, keywords, original, value))
    return merged
