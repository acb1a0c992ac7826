"""The PostgreSQL backend: the log in a table of a server database, for many processes on
many machines (several optimizers and gateways on one log).

``backend`` (the store), ``schema`` (the table), ``writes`` (the append transaction: why
positions are gapless and in commit order), ``reads`` (the page queries), ``notify``
(LISTEN/NOTIFY wake-ups for subscribers), ``errors`` (psycopg errors -> StoreUnavailable,
the log's name without its password) and ``lease`` (why its writer lease excludes nobody).
"""
