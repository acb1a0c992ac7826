"""The page queries: a page after a position, optionally within a stream prefix, and its
sizes without sending payloads."""

from __future__ import annotations

from typing import Final

from dspyops.eventlog.postgres.schema import TABLE
from dspyops.eventlog.sqlite.reads import prefix_upper_bound

# octet_length of the payload, char_length of the text columns: what len() gives in Python
# for bytes and str, as the contract's event sizes count them.
SIZES: Final = (
    "SELECT position, octet_length(payload), char_length(stream) + char_length(event_id)"
    f" + char_length(type) + char_length(actor) + octet_length(hash) FROM {TABLE}"
)


def page_where(after_position: int, limit: int, stream_prefix: str | None) -> tuple[str, list[object]]:
    """The WHERE/ORDER/LIMIT of a page read after a position, optionally within a stream prefix."""
    sql = "WHERE position > %s"
    params: list[object] = [after_position]
    if stream_prefix:
        # A range in the "C" collation instead of LIKE: uses the index and has no wildcard or
        # case-folding surprises.
        sql += " AND stream >= %s"
        params.append(stream_prefix)
        upper = prefix_upper_bound(stream_prefix)
        if upper is not None:
            sql += " AND stream < %s"
            params.append(upper)
    params.append(limit)
    return sql + " ORDER BY position LIMIT %s", params
