"""Key material in files: the chain key (given by the operator) and the per-log routing-key
secret (created with the log). Neither ever enters the log, the artifacts, the records or
an error message; messages name the file, never its content.

Both are refused when other users may read or write the file (``mode & 0o007``): a key
anyone on the machine can read protects nothing. Group access is allowed, so a key can be
shared with a service group (e.g. ``root:dspyops 0640``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from dspyops.eventlog.hashchain import MIN_KEY_BYTES

SECRET_BYTES: Final = 32


class KeyFileError(Exception):
    """A key or secret file is missing, too open, or malformed (the message names the file)."""


def _check_private(path: Path, what: str) -> os.stat_result:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"{what} {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"{what} {path} is not a regular file")
    if info.st_mode & 0o007:
        raise KeyFileError(
            f"{what} {path} is accessible to other users (mode {stat.S_IMODE(info.st_mode):o}): "
            f"run `chmod 600 {path}` (or 640 for a service group)"
        )
    return info


def load_chain_key(path: str | os.PathLike[str]) -> bytes:
    """The chain key held in ``path``: its bytes, one trailing newline dropped (so
    ``openssl rand -hex 32 > chain.key`` works), at least MIN_KEY_BYTES long."""
    file = Path(path)
    _check_private(file, "the chain key file")
    key = file.read_bytes()
    if key.endswith(b"\n"):
        key = key[:-1]
        if key.endswith(b"\r"):
            key = key[:-1]
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(
            f"the chain key file {file} holds {len(key)} bytes; a chain key needs at least {MIN_KEY_BYTES} "
            "(e.g. `openssl rand -hex 32 > chain.key`)"
        )
    return key


def secret_path(beside: str | os.PathLike[str]) -> Path:
    """Where the routing-key secret of a log (or of a prediction records file) lives."""
    return Path(f"{os.fspath(beside)}.secret")


def load_or_create_secret(path: str | os.PathLike[str]) -> bytes:
    """The 32-byte secret in ``path``, created (mode 0600) if there is none yet.

    Creation is atomic, so services starting together agree on one secret: the bytes go to
    a private temporary file first, and ``os.link`` puts it in place only if no file is
    there yet (it fails on an existing name, where a rename would overwrite).
    """
    file = Path(path)
    if not file.exists():
        tmp = file.with_name(f".{file.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, secrets.token_bytes(SECRET_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            with contextlib.suppress(FileExistsError):  # another process won: use its secret
                os.link(tmp, file)
        finally:
            tmp.unlink()
    _check_private(file, "the routing-key secret")
    secret = file.read_bytes()
    if len(secret) != SECRET_BYTES:
        raise KeyFileError(f"the routing-key secret {file} is not {SECRET_BYTES} bytes: the file is damaged")
    return secret
