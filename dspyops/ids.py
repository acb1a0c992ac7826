"""Ids by a unique prefix, as git takes commits: jobs, predictions and artifacts have long
hex ids a person copies from one command into the next; any unique prefix of at least
MIN_PREFIX characters names the whole id, an ambiguous one is an error counting the ids it
matches."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

MIN_PREFIX: Final = 4
HEX: Final = re.compile(r"[0-9a-f]+")


def resolve_prefix(given: str, ids: Iterable[str], what: str = "ids") -> str:
    """The id of `ids` that `given` is, or the one it is a unique prefix of; `given` itself
    when none matches (the caller then says NOT_FOUND). ValueError for an ambiguous or too
    short prefix (its message leaves the field's name to the caller)."""
    known = list(dict.fromkeys(ids))
    if given in known or not HEX.fullmatch(given):
        return given
    if len(given) < MIN_PREFIX:
        raise ValueError(f"a prefix needs at least {MIN_PREFIX} characters, got {given[:16]!r}")
    matches = [i for i in known if i.startswith(given)]
    if not matches:
        return given
    if len(matches) > 1:
        raise ValueError(f"prefix {given!r} is ambiguous: {len(matches)} {what} match")
    return matches[0]
