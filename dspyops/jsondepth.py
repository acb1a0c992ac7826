"""How deeply a JSON text nests, measured before parsing it and without recursion.

Python's json module decodes arrays and objects recursively: a request's state_json or a
dataset line of 100 000 '[' raised RecursionError from inside json.loads (INTERNAL), and a
few hundred levels that do decode overflow whatever walks the value next (DSPy's
load_state, deepcopy, the canonical encoder). Every JSON text a server reads from a
request is therefore measured first and refused beyond ``MAX_JSON_DEPTH`` with
INVALID_ARGUMENT naming the field. A DSPy saved state nests about 6 levels; 64 leaves
room for typed demo values (dicts of lists) without letting anything deep through.

The measure runs in C: a regex drops the string literals (brackets inside them do not
count), ``bytes.translate`` keeps only the brackets and maps them to +1/-1, and
``itertools.accumulate`` + ``max`` find the deepest point. No library offers a depth
check that does not parse (or recurse), hence this small one.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Final

MAX_JSON_DEPTH: Final = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # as signed bytes: +1 +1 -1 -1


def json_depth(text: str | bytes) -> int:
    """The deepest nesting of arrays and objects in ``text`` (0 for a scalar).

    For text that is not JSON the number is only an estimate (an unterminated string
    counts the brackets after it); parsing reports such text anyway.
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if len(brackets) <= 2:  # at most one pair: the common flat row, no walk needed
        return 1 if brackets[:1] in (b"[", b"{") else 0
    return max(0, max(accumulate(memoryview(brackets.translate(_STEPS)).cast("b"))))


def too_deep(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Does ``text`` nest arrays and objects deeper than ``limit``?"""
    return json_depth(text) > limit


__all__ = ["MAX_JSON_DEPTH", "json_depth", "too_deep"]
