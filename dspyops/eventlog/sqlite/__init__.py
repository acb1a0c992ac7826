"""The embedded SQLite backend: one file, WAL mode, safe for many threads and processes.

``backend`` (the store), ``connections`` (one connection per thread, the file's identity,
storage errors), ``schema`` (the table and its migrations), ``writes`` (the append
transaction) and ``reads`` (the page queries).
"""
