"""Content words: how the offline engine reads text (demo similarity, rules, rule mining).

Lower-cased runs of letters and digits, stop words dropped, light suffix stemming. One
definition for every part of the engine, so a keyword a proposal writes ("charged") meets
the word a ticket uses ("charges") the same way everywhere.
"""

from __future__ import annotations

import re
from typing import Final

STOP_WORDS: Final = frozenset(
    """a about above after again all am an and any are as at be been before being below between both but by
    can could did do does doing down during each few for from further had has have having he her here hers him
    his how i if in into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours out over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which while who whom why
    will with would you your yours yourself hi hello thanks thank please hey""".split()
)
WORD_RE: Final = re.compile(r"[a-z0-9]+")

# Longest first: the first suffix that leaves a stem of 3+ letters is stripped.
_SUFFIXES: Final = tuple("ations ation ments ment ings ing ies ied ed es er ly s y e".split())


def stem(word: str) -> str:
    """Light suffix stripping (two passes) so "charged"/"charges"/"charge" and
    "delivery"/"delivered" meet; crude next to Porter, but deterministic and cheap."""
    for _ in range(2):
        for suffix in _SUFFIXES:
            if len(word) - len(suffix) >= 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
    return word


def surface_words(text: str) -> list[str]:
    """The words of a text as written (lower-cased), stop words dropped, in order."""
    return [w for w in WORD_RE.findall(text.lower()) if w not in STOP_WORDS]


def content_words(text: str) -> list[str]:
    """The stems of the text's content words, in order (repeats kept)."""
    return [stem(w) for w in surface_words(text)]
