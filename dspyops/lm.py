"""LM configuration -> ``dspy.LM``.

``LMConfig`` is what a request asks for and what a program version records about its LM:
a *connection* (configured on the server, see ``dspyops.connections``) and a model that
connection allows, plus sampling settings. It never holds a key, and an endpoint only in
two cases: a server that allows request endpoints (``--allow-request-endpoints``), and
versions registered before connections existed (their configs have no connection; the
servers map them, see ``Connections.resolve_stored``).

``build_lm`` resolves a config against the server's connections and builds the LM. Every
non-offline LM is given its key explicitly (the connection's, or a placeholder no provider
accepts), because litellm and DSPy's native engine both fall back to keys in the process
environment (``OPENAI_API_KEY`` and friends) whenever the key they get is empty.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import dspy

from dspyops.offline.engine import OFFLINE_MODEL, AsyncOfflineEngine, OfflineEngine

if TYPE_CHECKING:
    from dspyops.connections import Connections, ResolvedLM

OFFLINE: Final = "offline"  # the built-in connection: the offline engine, no network, no key
ENV_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONNECTION_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_MODEL_RE: Final = re.compile(r"^[^\s\x00-\x1f\x7f]{1,200}$")
DEFAULT_MAX_TOKENS: Final = 512


def check_endpoint(value: str, field: str) -> str:
    """An http(s) URL with a host and no credentials in it; raises ValueError('field: ...').

    The message never echoes the URL: its userinfo (``user:key@``) would be a secret."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError(f"{field}: must be an http(s) URL such as http://127.0.0.1:8080/v1") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{field}: must be an http(s) URL such as http://127.0.0.1:8080/v1")
    if "@" in parts.netloc:
        raise ValueError(
            f"{field}: must not carry credentials (user:password@host); "
            "name the variable that holds the key in the connection instead"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{field}: must not have a query or fragment")
    return value


@dataclass(frozen=True)
class LMConfig:
    connection: str = OFFLINE  # "" only in configs recorded before connections existed
    model: str = ""  # as the connection names it ("gpt-4o-mini"); "" with the offline connection
    temperature: float = 0.0
    max_tokens: int = DEFAULT_MAX_TOKENS  # 0 in a request: the connection's default
    api_base: str = ""  # only a request endpoint the server allows, or a config from before connections
    api_key_env: str = ""  # NAME of an env var holding the key; the key itself is never stored
    latency_ms: int = 0  # offline engine only: injected per-call delay (benchmarks)

    @property
    def legacy(self) -> bool:
        """Recorded before connections: the model string carries the provider, maybe an endpoint."""
        return self.connection == ""

    @property
    def is_offline(self) -> bool:
        if self.legacy:
            return self.model in ("", OFFLINE_MODEL)
        return self.connection == OFFLINE

    def public_dict(self) -> dict[str, Any]:
        """What an artifact records: JSON-able and secret-free (api_key_env is a variable
        name, never its value). Endpoint fields and the latency only when set."""
        body: dict[str, Any] = {
            "connection": self.connection,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        for name in ("api_base", "api_key_env", "latency_ms"):
            if getattr(self, name):
                body[name] = getattr(self, name)
        return body

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LMConfig:
        """Both shapes: with a connection (this version) and without (recorded before
        connections: model string with provider prefix, api_base, api_key_env)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"lm: unknown keys {sorted(unknown)}")
        config = cls(**{"connection": "", **d})
        config.validate()
        return config

    def validate(self) -> None:
        """Shape only; what a server allows is ``Connections.resolve``'s business."""
        if not isinstance(self.connection, str) or (
            self.connection and not CONNECTION_NAME_RE.match(self.connection)
        ):
            raise ValueError(
                "connection: must be a connection name (lowercase letters, digits, '.', '_', '-')"
            )
        if not isinstance(self.model, str) or (self.model and not _MODEL_RE.match(self.model)):
            raise ValueError("model: must be a model name without whitespace, at most 200 characters")
        if (
            isinstance(self.temperature, bool)
            or not isinstance(self.temperature, int | float)
            or not math.isfinite(self.temperature)
        ):
            raise ValueError("temperature: must be a number")
        if not 0.0 <= float(self.temperature) <= 2.0:
            raise ValueError(f"temperature: must be within [0, 2], got {self.temperature}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 0:
            raise ValueError(
                f"max_tokens: must be an integer >= 1 (0: the connection's default), got {self.max_tokens!r}"
            )
        if not isinstance(self.api_base, str):
            raise ValueError("api_base: must be a string")
        if self.api_base:
            check_endpoint(self.api_base, "api_base")
        if not isinstance(self.api_key_env, str) or (
            self.api_key_env and not ENV_NAME_RE.match(self.api_key_env)
        ):
            # A value that is not a variable name is most likely a pasted key: refuse, never echo it.
            raise ValueError("api_key_env: must be the NAME of an environment variable (letters, digits, _)")
        if isinstance(self.latency_ms, bool) or not isinstance(self.latency_ms, int) or self.latency_ms < 0:
            raise ValueError(f"latency_ms: must be an integer >= 0, got {self.latency_ms!r}")
        if self.latency_ms and not self.is_offline:
            raise ValueError("latency_ms: only the offline model takes an injected latency")
        if self.is_offline and (self.api_base or self.api_key_env):
            raise ValueError("api_base: the offline connection has no endpoint and no key")


def build_lm(
    config: LMConfig, connections: Connections, *, field: str = "lm", cache: bool = False
) -> dspy.LM:
    """A ``dspy.LM`` for a request's config, checked against the server's connections."""
    return lm_from_resolved(connections.resolve(config, field), cache=cache)


def lm_from_resolved(
    resolved: ResolvedLM, *, cache: bool = False, make: Callable[..., dspy.LM] = dspy.LM
) -> dspy.LM:
    """The LM of a resolved config. The offline model never uses DSPy's cache (it is cheaper
    than a lookup).

    DSPy's response cache keys ignore ``api_base`` and ``api_key``, so two servers behind one
    model string would share entries: servers keep ``cache=False``. ``make`` builds the LM
    from ``dspy.LM``'s arguments: a job passes its per-job cached LM (dspyops.lmcache.lm),
    which the offline model goes through too (that is how tests replay with no network).
    """
    if resolved.offline:
        engine = OfflineEngine(latency_ms=resolved.latency_ms)
        return make(
            OFFLINE_MODEL,
            engine=engine,
            async_engine=AsyncOfflineEngine(engine),
            temperature=resolved.temperature,
            max_tokens=resolved.max_tokens,
            cache=False,
        )
    _quiet_litellm()
    # Explicit on every call, never empty: an empty key makes litellm (and DSPy's native
    # engine) take one from this process's environment and send it to this endpoint.
    kwargs: dict[str, Any] = {"api_key": resolved.api_key}
    if resolved.api_base:
        kwargs["api_base"] = resolved.api_base
        # A self-hosted OpenAI-compatible server (llama.cpp, vLLM, ...): DSPy's default engine
        # sends ``max_completion_tokens``, which such servers ignore (a call then runs to the
        # full context); litellm sends ``max_tokens``.
        kwargs["engine"] = "litellm"
    return make(
        resolved.litellm_model,
        temperature=resolved.temperature,
        max_tokens=resolved.max_tokens,
        cache=cache,
        **kwargs,
    )


def _quiet_litellm() -> None:
    """litellm prints "Give Feedback / Get Help" banners (and, with debug on, whole requests)
    to stdout with print(), past every logging filter."""
    import litellm

    litellm.suppress_debug_info = True
    litellm.set_verbose = False
