"""Keyword rules: the one kind of instruction the offline engine follows (grammar: package docstring).

A rule says "if <input> mentions <keyword>, <keyword> or <keyword>, the <output> is <value>".
The engine reads every rule in a task prompt's instruction and, for each output field, applies
the rule whose keywords the current inputs mention most often; a tie goes to the rule written
first. Keywords are compared as content-word stems (``words.content_words``), so "charged" in a
rule meets "charges" in a ticket.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from dspyops.offline.words import content_words

# "If the text mentions refund, money back or return, then the label is refund."
# The subject ("the text", "the input", "it") and "contains" / "mentions any of" are accepted
# so that hand-written instructions read naturally; the output is one \w+ field name.
_RULE_RE: Final = re.compile(
    r"\bif\s+(?:the\s+)?(?P<subject>\w+)\s+(?:mentions|contains)\s+(?:any\s+of\s*:?\s*)?"
    r"(?P<keywords>[^\n;]+?)\s*,?\s+(?:then\s+)?(?:the\s+)?(?P<output>\w+)\s+is\s+"
    r"(?P<value>\"[^\"\n]{1,80}\"|'[^'\n]{1,80}'|«[^»\n]{1,80}»|[\w\-]+(?:\s[\w\-]+){0,3}?)"
    r"\s*(?=[.;\n]|$)",
    re.IGNORECASE,
)
_KEYWORD_SPLIT_RE: Final = re.compile(r"\s*(?:,|\bor\b|/)\s*", re.IGNORECASE)
_QUOTES: Final = "\"'«»“”`"
_SENTENCE_END_RE: Final = re.compile(r"(?<=[.;\n])")
MAX_SENTENCE: Final = 500  # characters: a longer "sentence" is not read as a rule (bounded regex work)
MAX_RULES: Final = 64  # rules read from one instruction; more are ignored (bounded work per call)
MAX_KEYWORDS: Final = 32  # keywords per rule


@dataclass(frozen=True)
class Rule:
    """``If the <subject> mentions <keywords>, the <output> is <value>.``"""

    subject: str  # an input field name, or a word such as "text"/"input" meaning every input
    keywords: tuple[str, ...]  # as written (surface words or short phrases)
    output: str
    value: str

    def text(self) -> str:
        return f"If the {self.subject} mentions {_join(self.keywords)}, the {self.output} is {self.value}."


def _join(words: tuple[str, ...]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _rule_match(sentence: str) -> re.Match[str] | None:
    # One sentence at a time, each of bounded length: the pattern's lazy keyword list would
    # otherwise make a long line with many "if"s quadratic.
    if len(sentence) > MAX_SENTENCE or "if" not in sentence.lower():
        return None
    return _RULE_RE.search(sentence)


def strip_rules(text: str) -> str:
    """``text`` without its rule sentences."""
    return "".join(s for s in _SENTENCE_END_RE.split(text) if _rule_match(s) is None)


def parse_rules(text: str) -> list[Rule]:
    """Every rule in ``text``, in order: one per sentence (ended by ".", ";" or a line break)
    of at most ``MAX_SENTENCE`` characters, ``MAX_RULES`` at most."""
    rules: list[Rule] = []
    for sentence in _SENTENCE_END_RE.split(text):
        match = _rule_match(sentence)
        if match is None:
            continue
        keywords = tuple(
            k.strip(_QUOTES + " ")
            for k in _KEYWORD_SPLIT_RE.split(match.group("keywords"))
            if k.strip(_QUOTES + " ")
        )[:MAX_KEYWORDS]
        value = match.group("value").strip(_QUOTES + " ")
        if keywords and value:
            rules.append(Rule(match.group("subject"), keywords, match.group("output"), value))
        if len(rules) >= MAX_RULES:
            break
    return rules


def rules_text(rules: Iterable[Rule]) -> str:
    return " ".join(rule.text() for rule in rules)


@dataclass(frozen=True)
class Applied:
    rule: Rule
    value: str
    matched: tuple[str, ...]  # the keywords the inputs mention


def apply_rules(
    rules: list[Rule],
    inputs: Mapping[str, str],
    output: str,
    choices: tuple[str, ...] = (),
    all_outputs: frozenset[str] = frozenset(),
) -> Applied | None:
    """The rule that decides ``output`` for these inputs, or None when none applies.

    A rule concerns ``output`` when it names it (case-insensitively); a rule naming no field
    of ``all_outputs`` (lower-cased names; "the answer is ...") concerns every field that has
    Literal choices, and then only through its value being one of them. When the output has
    Literal choices, a rule whose value is not one of them is ignored (the value is returned
    spelled as the choice is). The score of a rule is how many of its keywords the subject
    text mentions (a phrase counts when all its words occur); the highest score wins, the
    earlier rule on a tie; a score of zero never applies.
    """
    every_input = "\n".join(inputs.values())
    stems_cache: dict[str, set[str]] = {}

    def stems_of(subject: str) -> set[str]:
        key = subject if subject in inputs else ""
        if key not in stems_cache:
            stems_cache[key] = set(content_words(inputs[key] if key else every_input))
        return stems_cache[key]

    best: Applied | None = None
    for rule in rules:
        named = rule.output.lower()
        if not (named == output.lower() or (named not in all_outputs and choices)):
            continue
        value = rule.value
        if choices:
            spelled = next((c for c in choices if c.lower() == value.lower()), None)
            if spelled is None:
                continue
            value = spelled
        present = stems_of(rule.subject)
        matched = tuple(
            k for k in rule.keywords if (ws := content_words(k)) and all(w in present for w in ws)
        )
        if matched and (best is None or len(matched) > len(best.matched)):
            best = Applied(rule, value, matched)
    return best
