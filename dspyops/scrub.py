"""One scrubber for everything that leaves a service.

What it removes:
- the values of every key variable any LM connection names (learned when the server starts,
  from the same reading of the environment that the calls use);
- bearer tokens of the server's token file: the file holds only their sha256, so every
  word of a text that could be a token is hashed and compared (``learn_token_hashes``);
- credentials in the shapes providers and proxies echo them: ``Bearer <token>``,
  ``Basic <b64>``, ``Authorization: ...``, ``x-api-key: ...``, ``api_key=...``;
- URL userinfo: ``scheme://user:pass@host`` becomes ``scheme://***@host``.

Where it is applied (one function, every exit): RPC status details (``dspyops.rpc`` and the
auth refusals), job events before they are logged or streamed, Evaluate's per-example errors
and report, prediction records' ``error`` and the gateway's log lines, structlog output (a
processor, ``dspyops.logs``), every ``logging`` record of any library, DSPy's and litellm's
included (a LogRecord factory), and, in a service process, what reaches stdout/stderr.

The scrubber is process-wide: loggers are too, and two servers in one process (the tests)
only ever add secrets to redact.

No library does this (structlog and logging have hooks, not rules), hence by hand.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from typing import Any, Final

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from dspyops.descriptors import is_map, map_value

REDACTED: Final = "[redacted]"
# Shorter values are not treated as secrets: redacting a 3-letter "key" everywhere would
# wreck every log line, and no provider issues keys that short. The servers warn about them.
MIN_SECRET_CHARS: Final = 8

_CREDENTIAL = r"[A-Za-z0-9._~+/=-]{8,}"
# "Bearer <token>", "Basic <b64>": only credential-like tokens, so "a bearer token is
# required" survives. A token with no digit or punctuation must be 16+ characters.
_SCHEME_RE: Final = re.compile(rf"(?i)\b(bearer|basic)(\s+)({_CREDENTIAL})")
_HEADER_RE: Final = re.compile(
    rf"(?i)\b(x-api-key|api-key|api_key|apikey|x-goog-api-key)([\"']?\s*[:=]\s*[\"']?)({_CREDENTIAL})"
)
_AUTH_HEADER_RE: Final = re.compile(
    r"(?i)\b((?:proxy-)?authorization)([\"']?\s*[:=]\s*[\"']?)((?!bearer\b|basic\b)[A-Za-z0-9._~+/=-]{8,})"
)
_USERINFO_RE: Final = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"'<>]+@")
_WORD_RE: Final = re.compile(r"[^\s\"'<>(){}\[\],;:=]{8,}")


def _credential_like(token: str) -> bool:
    return len(token) >= 16 or not token.isalpha()


class Scrubber:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._token_hashes: frozenset[str] = frozenset()

    def learn_secrets(self, values: Iterable[str]) -> list[str]:
        """Redact these values from now on; returns the ones too short to be redacted."""
        values = list(values)
        short = [v for v in values if v and len(v) < MIN_SECRET_CHARS]
        fresh = {v for v in values if len(v) >= MIN_SECRET_CHARS}
        with self._lock:
            secrets = self._secrets | fresh
            if secrets != self._secrets:
                self._secrets = frozenset(secrets)
                # longest first, so a secret containing another is removed whole
                ordered = sorted(secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
        return short

    def learn_token_hashes(self, hashes: Iterable[str]) -> None:
        """sha256 hex digests of bearer tokens (a token file's): words hashing to one are redacted."""
        with self._lock:
            self._token_hashes = self._token_hashes | {h.lower() for h in hashes}

    def __call__(self, text: str) -> str:
        if not text:
            return text
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        text = _SCHEME_RE.sub(_scheme_sub, text)
        text = _HEADER_RE.sub(_header_sub, text)
        text = _AUTH_HEADER_RE.sub(_header_sub, text)
        text = _USERINFO_RE.sub(r"\1***@", text)
        hashes = self._token_hashes
        if hashes:
            text = _WORD_RE.sub(lambda m: REDACTED if _token_hash(m.group()) in hashes else m.group(), text)
        return text

    def value(self, value: Any) -> Any:
        """A JSON-like value (a log event's), strings scrubbed; other objects as scrubbed text."""
        if isinstance(value, str):
            return self(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return self(str(value))

    def message(self, message: Message) -> Message:
        """Every string field of a protobuf message, nested ones included, scrubbed in place.
        Bytes are left alone (raw payloads whose hashes must keep verifying)."""
        for descriptor, value in message.ListFields():
            if descriptor.type == FieldDescriptor.TYPE_STRING:
                if descriptor.is_repeated:
                    cleaned = [self(v) for v in value]
                    if cleaned != list(value):
                        del value[:]
                        value.extend(cleaned)
                else:
                    cleaned_text = self(value)
                    if cleaned_text != value:
                        setattr(message, descriptor.name, cleaned_text)
            elif descriptor.type == FieldDescriptor.TYPE_MESSAGE:
                if is_map(descriptor):
                    value_field = map_value(descriptor)
                    for key in list(value):
                        if value_field.type == FieldDescriptor.TYPE_STRING:
                            cleaned_text = self(value[key])
                            if cleaned_text != value[key]:
                                value[key] = cleaned_text
                        elif value_field.type == FieldDescriptor.TYPE_MESSAGE:
                            self.message(value[key])
                elif descriptor.is_repeated:
                    for item in value:
                        self.message(item)
                else:
                    self.message(value)
        return message


def _token_hash(word: str) -> str:
    return hashlib.sha256(word.encode("utf-8")).hexdigest()


def _scheme_sub(match: re.Match[str]) -> str:
    if not _credential_like(match.group(3)):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{REDACTED}"


def _header_sub(match: re.Match[str]) -> str:
    if not _credential_like(match.group(3)):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{REDACTED}"


SCRUBBER: Final = Scrubber()


def scrub(text: str) -> str:
    """``text`` with every known secret, credential and URL userinfo redacted."""
    return SCRUBBER(text)


def scrub_message(message: Message) -> Message:
    return SCRUBBER.message(message)


def scrub_value(value: Any) -> Any:
    return SCRUBBER.value(value)


def learn_secrets(values: Iterable[str]) -> list[str]:
    return SCRUBBER.learn_secrets(values)


def learn_token_hashes(hashes: Iterable[str]) -> None:
    SCRUBBER.learn_token_hashes(hashes)
