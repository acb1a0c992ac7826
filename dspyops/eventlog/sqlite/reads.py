"""The page queries: a page after a position, optionally within a stream prefix, and its
sizes without reading payloads."""

from __future__ import annotations

from typing import Final

# length() of a BLOB comes from the record header: no payload page is read. Text lengths are
# characters, close enough for the few short text columns.
SIZES: Final = (
    "SELECT position, length(payload), length(stream) + length(event_id) + length(type) + length(hash)"
)
SIZES_WITH_ACTOR: Final = SIZES + " + length(actor)"


def page_where(after_position: int, limit: int, stream_prefix: str | None) -> tuple[str, list[object]]:
    """The WHERE/ORDER/LIMIT of a page read after a position, optionally within a stream prefix."""
    sql = "WHERE position > ?"
    params: list[object] = [after_position]
    if stream_prefix:
        # A range on the raw (UTF-8, memcmp) ordering instead of LIKE: uses the index and has
        # no wildcard or case-folding surprises.
        sql += " AND stream >= ?"
        params.append(stream_prefix)
        upper = prefix_upper_bound(stream_prefix)
        if upper is not None:
            sql += " AND stream < ?"
            params.append(upper)
    params.append(limit)
    return sql + " ORDER BY position LIMIT ?", params


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    None when there is none (the prefix is all U+10FFFF). Surrogates are skipped because they
    cannot be encoded in UTF-8.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None
