"""LM connections: where a key may be sent is server configuration, never request data.

A server is started with ``--lm-connections FILE`` (TOML; the optimizer and the gateway
take the same file). Each ``[connections.NAME]`` table says how to reach one LM service::

    [connections.openai]
    provider = "openai/"               # LiteLLM provider/model prefix
    api_key_env = "OPENAI_API_KEY"     # the variable that holds the key (read at start)
    models = ["gpt-4o-mini", "gpt-4.1-*"]  # the models requests may name (fnmatch globs)
    max_tokens_cap = 2048

    [connections.local]
    api_base = "http://127.0.0.1:8080/v1"  # an OpenAI-compatible server (llama.cpp, vLLM)
    models = ["local"]                      # no api_key_env: a placeholder key is sent
    default_max_tokens = 256
    min_temperature = 0.0
    max_temperature = 1.0
    input_usd_per_mtok = 0.10          # prices, for servers that report no cost
    output_usd_per_mtok = 0.40

Requests (and versions) name a connection and a model. The built-in connection
``offline`` (the offline engine, model ``nearest-demo``) always exists and is what an empty
LMConfig means.

Rules (``Connections.resolve``):
- a request that sets ``api_base`` or ``api_key_env`` is INVALID_ARGUMENT naming the field,
  unless the server allows request endpoints (``--allow-request-endpoints HOST[:PORT],...``);
  then only for those hosts, and only with a key variable the connections file names;
- a model the connection does not allow is PERMISSION_DENIED naming connection and model;
- max_tokens above the connection's cap, or a temperature outside its range, is
  INVALID_ARGUMENT naming the field and the connection;
- URLs with userinfo (``http://user:key@host``) are refused, in the file and in requests.

Key values are read from the environment once, when the file is loaded: the calls use
them and the scrubber (``dspyops.scrub``) learns them at the same moment, so what is sent
and what is redacted never drift apart.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import structlog

from dspyops.errors import DspyopsError, FailedPrecondition, InvalidArgument, PermissionDenied, shown
from dspyops.lm import (
    CONNECTION_NAME_RE,
    DEFAULT_MAX_TOKENS,
    ENV_NAME_RE,
    OFFLINE,
    LMConfig,
    check_endpoint,
)
from dspyops.offline.engine import OFFLINE_MODEL
from dspyops.proto import events_pb2 as pb
from dspyops.scrub import MIN_SECRET_CHARS, learn_secrets

# Sent when a connection has no key: never empty (an empty key makes litellm use the
# server's own OPENAI_API_KEY & co.), and no provider accepts it.
PLACEHOLDER_KEY: Final = "dspyops-no-key"
OFFLINE_MODELS: Final = ("", "nearest-demo", OFFLINE_MODEL)  # how requests may name the offline model
_PROVIDER_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-/")
_FILE_KEYS: Final = frozenset(
    {
        "provider",
        "api_base",
        "api_key_env",
        "models",
        "default_max_tokens",
        "max_tokens_cap",
        "min_temperature",
        "max_temperature",
        "input_usd_per_mtok",
        "output_usd_per_mtok",
    }
)


class ConnectionsFileError(ValueError):
    """The connections file (or --allow-request-endpoints) cannot be used: the server does
    not start. The message names the file and the connection, never a key."""


@dataclass(frozen=True)
class Prices:
    """USD per million tokens; both 0: none configured (the provider's reported cost counts)."""

    input_usd_per_mtok: float = 0.0
    output_usd_per_mtok: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.input_usd_per_mtok or self.output_usd_per_mtok)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_usd_per_mtok + output_tokens * self.output_usd_per_mtok) / 1e6


@dataclass(frozen=True)
class Connection:
    name: str
    provider: str = ""  # LiteLLM provider/model prefix, e.g. "openai/"
    api_base: str = ""  # "": the provider's own endpoint
    api_key_env: str = ""  # "": the endpoint takes no key (a placeholder is sent)
    models: tuple[str, ...] = ()  # fnmatch patterns of the models requests may name
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    max_tokens_cap: int = 0  # 0: no cap
    min_temperature: float = 0.0
    max_temperature: float = 2.0
    prices: Prices = field(default_factory=Prices)

    @property
    def offline(self) -> bool:
        return self.name == OFFLINE

    def allows(self, model: str) -> bool:
        if self.offline:
            return model in OFFLINE_MODELS
        return any(fnmatchcase(model, pattern) for pattern in self.models)

    def info(self, has_key: bool) -> pb.ConnectionInfo:
        return pb.ConnectionInfo(
            name=self.name,
            provider=self.provider,
            endpoint=self.api_base,
            models=list(self.models),
            has_key=has_key,
            default_max_tokens=self.default_max_tokens,
            max_tokens_cap=self.max_tokens_cap,
            min_temperature=self.min_temperature,
            max_temperature=self.max_temperature,
            input_usd_per_mtok=self.prices.input_usd_per_mtok,
            output_usd_per_mtok=self.prices.output_usd_per_mtok,
        )


OFFLINE_CONNECTION: Final = Connection(name=OFFLINE, provider="offline/", models=("nearest-demo",))


@dataclass(frozen=True)
class ResolvedLM:
    """A config checked against a server's connections: what to call, with which key."""

    connection: Connection
    model: str  # as the connection names it ("" for offline)
    temperature: float
    max_tokens: int
    api_base: str = ""  # the endpoint called ("" : the provider's)
    api_key_env: str = ""  # set when a request (or an old version) named its own variable
    latency_ms: int = 0
    api_key: str = field(default=PLACEHOLDER_KEY, repr=False)  # the value sent; never recorded
    from_request_endpoint: bool = False  # api_base/api_key_env came from the request, not the file

    @property
    def offline(self) -> bool:
        return self.connection.offline

    @property
    def litellm_model(self) -> str:
        return self.connection.provider + self.model

    @property
    def prices(self) -> Prices:
        return self.connection.prices

    def record(self) -> LMConfig:
        """What a version records: connection + model + sampling settings; the endpoint and
        key variable only when the request set them (a server that allows request endpoints)."""
        return LMConfig(
            connection=self.connection.name,
            model="" if self.offline else self.model,
            temperature=float(self.temperature),
            max_tokens=self.max_tokens,
            api_base=self.api_base if self.from_request_endpoint else "",
            api_key_env=self.api_key_env if self.from_request_endpoint else "",
            latency_ms=self.latency_ms,
        )


def parse_endpoint_allowlist(
    items: Iterable[str] | str, where: str = "--allow-request-endpoints"
) -> frozenset[str]:
    """``HOST[:PORT],...`` -> {"host", "host:port"}; a bare host allows every port."""
    if isinstance(items, str):
        items = [items]
    allowed: set[str] = set()
    for chunk in items:
        for raw in chunk.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if "@" in entry:  # never echoed: user:key@host carries a secret
                raise ConnectionsFileError(
                    f"{where}: an entry carries credentials (user@host); give HOST[:PORT]"
                )
            try:
                parts = urlsplit(f"//{entry}")
                port = parts.port
            except ValueError:
                raise ConnectionsFileError(f"{where}: {shown(entry)} is not HOST[:PORT]") from None
            if not parts.hostname or parts.path or parts.query or parts.fragment:
                raise ConnectionsFileError(f"{where}: {shown(entry)} is not HOST[:PORT]")
            allowed.add(f"{parts.hostname}:{port}" if port is not None else parts.hostname)
    return frozenset(allowed)


def _endpoint_key(api_base: str) -> tuple[str, str]:
    parts = urlsplit(api_base)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, f"{host}:{port}"


class Connections:
    """The connections a server was started with, the built-in ``offline`` among them."""

    def __init__(
        self,
        connections: Iterable[Connection] = (),
        *,
        allow_request_endpoints: Iterable[str] | str = (),
        environ: Mapping[str, str] | None = None,
        source: str = "",
    ) -> None:
        env = os.environ if environ is None else environ
        self.source = source
        self._by_name: dict[str, Connection] = {OFFLINE: OFFLINE_CONNECTION}
        for connection in connections:
            self._by_name[connection.name] = connection
        self.allowed_endpoints = parse_endpoint_allowlist(allow_request_endpoints)
        # Read once: the values sent are exactly the values the scrubber learns.
        self._keys: dict[str, str] = {name: env[name] for name in self.key_variables() if env.get(name)}

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(
        cls,
        path: str | Path | None,
        allow_request_endpoints: Iterable[str] | str = (),
        environ: Mapping[str, str] | None = None,
    ) -> Connections:
        """The file's connections (none: only ``offline``). Refuses, naming the file and the
        connection: unreadable or invalid TOML, unknown keys, userinfo in an api_base, a
        connection named ``offline``."""
        if not path:
            return cls(allow_request_endpoints=allow_request_endpoints, environ=environ)
        where = str(path)
        try:
            with open(path, "rb") as fh:
                document = tomllib.load(fh)
        except OSError as exc:
            raise ConnectionsFileError(
                f"{where}: cannot read the connections file ({exc.strerror})"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConnectionsFileError(f"{where}: not valid TOML ({exc})") from None
        unknown = sorted(set(document) - {"connections"})
        if unknown:
            raise ConnectionsFileError(
                f"{where}: unknown top-level keys {unknown}; expected [connections.NAME] tables"
            )
        tables = document.get("connections", {})
        if not isinstance(tables, dict):
            raise ConnectionsFileError(f"{where}: 'connections' must be a table of [connections.NAME] tables")
        connections = [_parse_connection(where, name, table) for name, table in tables.items()]
        return cls(
            connections, allow_request_endpoints=allow_request_endpoints, environ=environ, source=where
        )

    # ------------------------------------------------------------------ what the server has

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str) -> Connection | None:
        return self._by_name.get(name)

    def key_variables(self) -> set[str]:
        """Every variable any connection names: the only ones a server ever reads a key from."""
        return {c.api_key_env for c in self._by_name.values() if c.api_key_env}

    def secret_values(self) -> list[str]:
        """The key values read at load, for the scrubber."""
        return list(self._keys.values())

    def has_key(self, connection: Connection) -> bool:
        return bool(connection.api_key_env) and connection.api_key_env in self._keys

    def info(self) -> list[pb.ConnectionInfo]:
        return [self._by_name[name].info(self.has_key(self._by_name[name])) for name in self.names()]

    def endpoint_allowed(self, api_base: str) -> bool:
        host, host_port = _endpoint_key(api_base)
        return host in self.allowed_endpoints or host_port in self.allowed_endpoints

    # ------------------------------------------------------------------ resolving

    def resolve(self, config: LMConfig, field: str = "lm") -> ResolvedLM:
        """A request's LM config, checked against this server's connections.

        INVALID_ARGUMENT for request endpoints (unless allowed), caps, unknown connections;
        PERMISSION_DENIED for a model the connection does not allow; FAILED_PRECONDITION for
        a connection whose key variable is not set on this server."""
        if config.api_base or config.api_key_env:
            self._check_request_endpoint(config, field)
        try:
            config.validate()
        except ValueError as exc:
            name, sep, problem = str(exc).partition(": ")
            raise InvalidArgument(f"{field}.{name}" if sep else field, problem if sep else str(exc)) from None
        name = config.connection or OFFLINE
        connection = self._by_name.get(name)
        if connection is None:
            raise InvalidArgument(
                f"{field}.connection",
                f"no connection {shown(name)} on this server (it has: {', '.join(self.names())}); "
                "see `dspyops connections`",
            )
        if config.legacy and config.model == OFFLINE_MODEL:
            model = ""
        else:
            model = config.model
        return self._finish(connection, model, config, field)

    def resolve_stored(self, config: LMConfig, what: str) -> ResolvedLM:
        """A recorded config (a registered version's), for serving or evaluating it: the same
        rules, but any refusal is FAILED_PRECONDITION naming the version (``what``) and the
        connection. Configs from before connections are mapped to a connection of this
        server with the same endpoint, or to an ad-hoc one for an endpoint this server allows."""
        try:
            if config.legacy:
                return self._resolve_legacy(config, what)
            if config.api_base or config.api_key_env:
                # recorded from an allowed request endpoint: allowed here too?
                self._check_request_endpoint(config, "lm")
            return self._finish(self._stored_connection(config.connection, what), config.model, config, "lm")
        except DspyopsError as exc:
            if what in exc.problem:  # already names the version and the connection
                raise FailedPrecondition("version", exc.problem) from None
            raise FailedPrecondition(
                "version",
                f"{what} runs on connection {config.connection or 'legacy'!r}, "
                f"which this server refuses: {exc}",
            ) from None

    def _stored_connection(self, name: str, what: str) -> Connection:
        connection = self._by_name.get(name)
        if connection is None:
            raise FailedPrecondition(
                "version",
                f"{what} runs on LM connection {shown(name)}, which this server does not have "
                f"(it has: {', '.join(self.names())}); start it with a --lm-connections file that names it",
            )
        return connection

    def _resolve_legacy(self, config: LMConfig, what: str) -> ResolvedLM:
        if config.is_offline:
            return self._finish(OFFLINE_CONNECTION, "", replace(config, connection=OFFLINE, model=""), "lm")
        for connection in self._by_name.values():
            if connection.offline or not config.model.startswith(connection.provider):
                continue
            model = config.model[len(connection.provider) :]
            same_endpoint = connection.api_base.rstrip("/") == config.api_base.rstrip("/")
            same_key = config.api_key_env in ("", connection.api_key_env)
            if same_endpoint and same_key and connection.allows(model):
                return self._finish(connection, model, replace(config, api_base="", api_key_env=""), "lm")
        endpoint = _endpoint_key(config.api_base)[1] if config.api_base else "the provider's default endpoint"
        if not config.api_base or not self.endpoint_allowed(config.api_base):
            raise FailedPrecondition(
                "version",
                f"{what} was registered before LM connections (model {shown(config.model)} at {endpoint}); "
                "no connection of this server has that endpoint and --allow-request-endpoints "
                "does not list it",
            )
        if config.api_key_env and config.api_key_env not in self.key_variables():
            raise FailedPrecondition(
                "version",
                f"{what} was registered before LM connections with a key variable the connections file "
                "does not name; this server reads keys only from the variables its connections name",
            )
        provider, sep, model = config.model.partition("/")
        adhoc = Connection(
            name=f"legacy:{endpoint}",
            provider=provider + sep,
            api_base=config.api_base,
            api_key_env=config.api_key_env,
            models=("*",),
        )
        return self._finish(
            adhoc, model if sep else config.model, replace(config, api_base="", api_key_env=""), "lm"
        )

    def _check_request_endpoint(self, config: LMConfig, field: str) -> None:
        """api_base / api_key_env in a request (or a version recorded from one)."""
        which = "api_base" if config.api_base else "api_key_env"
        if not self.allowed_endpoints:
            raise InvalidArgument(
                f"{field}.{which}",
                "set on the server in the connection (--lm-connections); this server takes no "
                "endpoint or key variable in requests",
            )
        if config.api_base:
            try:
                check_endpoint(config.api_base, "api_base")
            except ValueError as exc:
                raise InvalidArgument(f"{field}.api_base", str(exc).removeprefix("api_base: ")) from None
            if not self.endpoint_allowed(config.api_base):
                raise InvalidArgument(
                    f"{field}.api_base",
                    f"set on the server in the connection; {_endpoint_key(config.api_base)[1]} is not "
                    "among this server's --allow-request-endpoints",
                )
        if config.api_key_env and config.api_key_env not in self.key_variables():
            # never echoed: a value that is not a variable the file names may be a pasted key
            raise InvalidArgument(
                f"{field}.api_key_env",
                "set on the server in the connection; a request may name only a key variable "
                "that the server's connections file names",
            )

    def _finish(self, connection: Connection, model: str, config: LMConfig, field: str) -> ResolvedLM:
        name = connection.name
        if connection.offline and (config.api_base or config.api_key_env):
            raise InvalidArgument(f"{field}.api_base", "the offline connection has no endpoint and no key")
        if not model and not connection.offline:
            raise InvalidArgument(
                f"{field}.model",
                f"is required with connection {name!r} (it allows {list(connection.models)})",
            )
        if not connection.allows(model):
            allowed = ["nearest-demo"] if connection.offline else list(connection.models)
            raise PermissionDenied(
                f"{field}.model",
                f"connection {name!r} does not allow model {shown(model)} (it allows {allowed}; "
                f"the connection adds its provider prefix {connection.provider!r})",
            )
        max_tokens = config.max_tokens or connection.default_max_tokens
        if connection.max_tokens_cap and max_tokens > connection.max_tokens_cap:
            raise InvalidArgument(
                f"{field}.max_tokens",
                f"{max_tokens} is above the cap {connection.max_tokens_cap} of connection {name!r}",
            )
        temperature = float(config.temperature)
        if not connection.min_temperature <= temperature <= connection.max_temperature:
            raise InvalidArgument(
                f"{field}.temperature",
                f"{temperature:g} is outside [{connection.min_temperature:g}, "
                f"{connection.max_temperature:g}], the range of connection {name!r}",
            )
        from_request = bool(config.api_base or config.api_key_env)
        key_env = config.api_key_env or connection.api_key_env
        if key_env and key_env not in self._keys:
            raise FailedPrecondition(
                f"{field}.connection",
                f"connection {name!r}: its key variable {key_env} is not set on this server",
            )
        return ResolvedLM(
            connection=connection,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            api_base=config.api_base or connection.api_base,
            api_key_env=key_env,
            latency_ms=config.latency_ms,
            api_key=self._keys.get(key_env, PLACEHOLDER_KEY) if key_env else PLACEHOLDER_KEY,
            from_request_endpoint=from_request,
        )


OFFLINE_ONLY: Final = Connections(environ={})


def load_for_server(
    path: str | Path | None, allow_request_endpoints: Iterable[str] | str = ()
) -> Connections:
    """At a server's start: the connections, their key values taught to the scrubber (before
    anything can log them), and a log line naming what was loaded (never a key)."""
    connections = Connections.load(path, allow_request_endpoints)
    short = learn_secrets(connections.secret_values())
    log = structlog.get_logger()
    for name in connections.names():
        connection = connections.get(name)
        assert connection is not None
        if connection.api_key_env and not connections.has_key(connection):
            log.warning("connection_key_missing", connection=name, variable=connection.api_key_env)
    if short:
        log.warning(
            "connection_key_short",
            problem=f"{len(short)} key value(s) shorter than {MIN_SECRET_CHARS} characters: not scrubbed",
        )
    log.info(
        "lm_connections",
        file=connections.source,
        connections=connections.names(),
        request_endpoints=sorted(connections.allowed_endpoints),
    )
    return connections


# ---------------------------------------------------------------------- the file


def _parse_connection(where: str, name: Any, table: Any) -> Connection:
    if not isinstance(name, str) or not CONNECTION_NAME_RE.match(name):
        raise ConnectionsFileError(
            f"{where}: connection {shown(name)}: a name is 1-63 lowercase letters, digits, '.', '_' or '-'"
        )
    at = f"{where}: connection {name!r}"
    if name == OFFLINE:
        raise ConnectionsFileError(f"{at}: 'offline' is the built-in offline engine; pick another name")
    if not isinstance(table, dict):
        raise ConnectionsFileError(f"{at}: must be a table ([connections.{name}])")
    unknown = sorted(set(table) - _FILE_KEYS)
    if unknown:
        raise ConnectionsFileError(f"{at}: unknown keys {unknown} (known: {sorted(_FILE_KEYS)})")

    def text(key: str) -> str:
        value = table.get(key, "")
        if not isinstance(value, str):
            raise ConnectionsFileError(f"{at}: {key} must be a string")
        return value

    def integer(key: str, default: int, minimum: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConnectionsFileError(f"{at}: {key} must be an integer >= {minimum}")
        return value

    def number(key: str, default: float, low: float, high: float) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConnectionsFileError(f"{at}: {key} must be a number")
        if not low <= value <= high:
            raise ConnectionsFileError(f"{at}: {key} must be within [{low:g}, {high:g}]")
        return float(value)

    provider, api_base, key_env = text("provider"), text("api_base"), text("api_key_env")
    if api_base:
        try:
            check_endpoint(api_base, "api_base")
        except ValueError as exc:
            raise ConnectionsFileError(f"{at}: {exc}") from None
    if not provider and not api_base:
        raise ConnectionsFileError(f'{at}: needs a provider (e.g. "openai/") or an api_base')
    provider = provider or "openai/"  # an api_base alone: an OpenAI-compatible server
    if not provider.endswith("/") or set(provider) - _PROVIDER_CHARS or "//" in provider or provider == "/":
        raise ConnectionsFileError(
            f'{at}: provider must be a LiteLLM prefix such as "openai/" (lowercase, ends with /)'
        )
    if provider.startswith("offline/"):
        raise ConnectionsFileError(f"{at}: the offline/ provider is the built-in 'offline' connection")
    if key_env and not ENV_NAME_RE.match(key_env):
        # never echoed: a value that is not a variable name is most likely the key itself
        raise ConnectionsFileError(f"{at}: api_key_env must be the NAME of an environment variable")
    models = table.get("models")
    if (
        not isinstance(models, list)
        or not models
        or not all(isinstance(m, str) and m.strip() == m and m for m in models)
    ):
        raise ConnectionsFileError(f"{at}: models must be a non-empty list of model names or glob patterns")
    cap = integer("max_tokens_cap", 0, 0)
    default_max_tokens = integer(
        "default_max_tokens", min(DEFAULT_MAX_TOKENS, cap) if cap else DEFAULT_MAX_TOKENS, 1
    )
    if cap and default_max_tokens > cap:
        raise ConnectionsFileError(
            f"{at}: default_max_tokens {default_max_tokens} is above max_tokens_cap {cap}"
        )
    low = number("min_temperature", 0.0, 0.0, 2.0)
    high = number("max_temperature", 2.0, 0.0, 2.0)
    if low > high:
        raise ConnectionsFileError(f"{at}: min_temperature is above max_temperature")
    prices = Prices(number("input_usd_per_mtok", 0.0, 0.0, 1e6), number("output_usd_per_mtok", 0.0, 0.0, 1e6))
    return Connection(
        name=name,
        provider=provider,
        api_base=api_base,
        api_key_env=key_env,
        models=tuple(models),
        default_max_tokens=default_max_tokens,
        max_tokens_cap=cap,
        min_temperature=low,
        max_temperature=high,
        prices=prices,
    )
