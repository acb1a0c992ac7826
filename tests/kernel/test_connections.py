"""LM connections: where a key may be sent is server configuration, never request data.

Real servers on loopback, a loopback fake provider (tests/fake_provider.py) that records
the Authorization header of every call it gets, and real connections files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from dspyops.client import OptimizerClient
from dspyops.connections import (
    PLACEHOLDER_KEY,
    Connections,
    ConnectionsFileError,
    parse_endpoint_allowlist,
)
from dspyops.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from dspyops.lm import LMConfig
from dspyops.proto import events_pb2 as pb
from tests.support.connections import (
    AMBIENT,
    BAD,
    DENIED,
    FAKE_KEY,
    PLANTED,
    ROWS,
    connections_file,
    job,
    optimizer_thread,
)
from tests.support.fake_provider import FakeProvider

# ---------------------------------------------------------------------- the exfiltration


@pytest.mark.usefixtures("server_env")
def test_a_request_cannot_send_a_server_secret_to_its_own_endpoint(
    provider: FakeProvider, tmp_path: Path
) -> None:
    """The review's finding: api_base = the attacker's listener and api_key_env = any variable
    of the server's environment got the secret sent as a bearer token; with no api_key_env,
    the server's OPENAI_API_KEY. Both refused, naming the field; nothing is sent."""
    server = optimizer_thread(tmp_path)
    try:
        with OptimizerClient(server.address, timeout=60) as opt:
            for lm, field in [
                (
                    pb.LMConfig(
                        model="openai/x", api_base=provider.api_base, api_key_env="AWS_SECRET_ACCESS_KEY"
                    ),
                    "lm.api_base",
                ),
                (pb.LMConfig(model="openai/x", api_base=provider.api_base), "lm.api_base"),
                (pb.LMConfig(model="openai/x", api_key_env="AWS_SECRET_ACCESS_KEY"), "lm.api_key_env"),
            ]:
                try:
                    events = job(opt, lm, "exfil")
                except grpc.RpcError as err:
                    assert err.code() == BAD, err.details()
                    assert field in err.details() and "set on the server in the connection" in err.details()
                    assert PLANTED not in err.details()
                else:
                    pytest.fail(
                        f"accepted: job {events[-1].WhichOneof('kind')}; "
                        f"provider got {provider.authorizations}"
                    )
            assert opt.list_programs().programs == []
    finally:
        server.stop()
    assert provider.received == [], provider.authorizations


# ---------------------------------------------------------------------- the file


def test_a_connections_file_names_endpoints_keys_models_caps_and_prices(
    provider: FakeProvider, tmp_path: Path, server_env: None
) -> None:
    connections = Connections.load(connections_file(tmp_path, provider))
    assert connections.names() == ["fake", "keyed", "offline"]
    fake, keyed = connections.get("fake"), connections.get("keyed")
    assert fake is not None and keyed is not None
    assert (fake.provider, fake.api_base, fake.api_key_env) == ("openai/", provider.api_base, "")
    assert fake.allows("m1") and fake.allows("family-7b") and not fake.allows("m2")
    assert (fake.default_max_tokens, fake.max_tokens_cap, fake.max_temperature) == (64, 256, 1.0)
    assert keyed.prices.cost(1_000_000, 0) == 2000.0
    assert connections.key_variables() == {"FAKE_PROVIDER_KEY"}
    assert connections.secret_values() == [FAKE_KEY]  # read once, at load; nothing else of the env
    info = {c.name: c for c in connections.info()}
    assert info["keyed"].has_key and not info["fake"].has_key and not info["offline"].has_key
    assert FAKE_KEY.encode() not in b"".join(c.SerializeToString() for c in info.values())


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[connections.x\n", "not valid TOML"),
        (
            '[connections.x]\napi_base = "http://h/v1"\nmodels = ["m"]\ncolour = "red"\n',
            "unknown keys ['colour']",
        ),
        ('[connections.x]\napi_base = "http://user:sk-in-url-123456@h/v1"\nmodels = ["m"]\n', "credentials"),
        ('[connections.offline]\nprovider = "openai/"\nmodels = ["m"]\n', "built-in"),
        ('[connections.x]\napi_base = "http://h/v1"\n', "models must be"),
        ('[connections.x]\napi_base = "http://h/v1"\nmodels = []\n', "models must be"),
        ('[connections.x]\nmodels = ["m"]\n', "needs a provider"),
        ('[connections.x]\nprovider = "OpenAI"\nmodels = ["m"]\n', "provider must be"),
        ('[connections.x]\nprovider = "openai/"\napi_key_env = "sk-pasted 123456"\nmodels = ["m"]\n', "NAME"),
        ('[connections.x]\napi_base = "ftp://h"\nmodels = ["m"]\n', "http(s) URL"),
        (
            '[connections.x]\napi_base = "http://h"\nmodels = ["m"]\n'
            "max_tokens_cap = 10\ndefault_max_tokens = 20\n",
            "above",
        ),
        (
            '[connections.x]\napi_base = "http://h"\nmodels = ["m"]\n'
            "min_temperature = 1.5\nmax_temperature = 1.0\n",
            "above",
        ),
        ('[connections.x]\napi_base = "http://h"\nmodels = ["m"]\ninput_usd_per_mtok = -1\n', "within"),
        ('[connections.x]\napi_base = "http://h"\nmodels = ["m"]\nmax_tokens_cap = true\n', "integer"),
        ('[connections."Bad Name"]\napi_base = "http://h"\nmodels = ["m"]\n', "a name is"),
        ("[other]\nx = 1\n", "unknown top-level keys"),
    ],
)
def test_a_bad_connections_file_is_refused_naming_file_and_connection(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConnectionsFileError) as err:
        Connections.load(path)
    message = str(err.value)
    assert message.startswith(str(path)) and problem in message, message
    if "[connections.x" in content and "TOML" not in problem:
        assert "connection 'x'" in message
    assert "sk-in-url" not in message and "sk-pasted" not in message  # never echoed


def test_servers_refuse_to_start_on_a_bad_file_or_allowlist(tmp_path: Path) -> None:
    with pytest.raises(ConnectionsFileError, match="cannot read"):
        Connections.load(tmp_path / "missing.toml")
    for bad in ["http://h:1", "h/path", "user:sk-allow-123456@h"]:
        with pytest.raises(ConnectionsFileError) as err:
            parse_endpoint_allowlist(bad)
        assert "sk-allow" not in str(err.value)
    assert parse_endpoint_allowlist("127.0.0.1:8080, Example.com") == {"127.0.0.1:8080", "example.com"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[connections.local]\napi_base = "http://u:sk-start-123456@h/v1"\nmodels = ["m"]\n')
    # the CLI: exits non-zero naming the file and the connection, never the URL's key
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dspyops.cli",
            "serve",
            "gateway",
            "--log",
            str(tmp_path / "l.db"),
            "--lm-connections",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert str(bad) in result.stderr and "connection 'local'" in result.stderr, result.stderr
    assert "sk-start" not in result.stderr + result.stdout


# ---------------------------------------------------------------------- resolution


def test_resolution_allowlists_caps_and_defaults(
    provider: FakeProvider, tmp_path: Path, server_env: None
) -> None:
    connections = Connections.load(connections_file(tmp_path, provider))
    resolved = connections.resolve(LMConfig(connection="fake", model="family-13b", max_tokens=0))
    assert (resolved.litellm_model, resolved.max_tokens, resolved.api_key) == (
        "openai/family-13b",
        64,
        PLACEHOLDER_KEY,
    )
    assert resolved.record() == LMConfig(
        connection="fake", model="family-13b", temperature=0.0, max_tokens=64
    )
    assert connections.resolve(LMConfig(connection="keyed", model="m1")).api_key == FAKE_KEY
    offline = connections.resolve(LMConfig())
    assert offline.offline and offline.record() == LMConfig()

    with pytest.raises(PermissionDenied) as denied:
        connections.resolve(LMConfig(connection="fake", model="gpt-4o"))
    assert (
        denied.value.field == "lm.model"
        and "'fake'" in denied.value.problem
        and "gpt-4o" in denied.value.problem
    )
    with pytest.raises(PermissionDenied, match="offline"):
        connections.resolve(LMConfig(model="openai/gpt-4o"))  # the offline connection runs only its engine
    for config, field in [
        (LMConfig(connection="fake", model="m1", max_tokens=257), "lm.max_tokens"),
        (LMConfig(connection="fake", model="m1", max_tokens=0, temperature=1.5), "lm.temperature"),
        (LMConfig(connection="fake", model="", max_tokens=0), "lm.model"),
        (LMConfig(connection="nope", model="m1", max_tokens=0), "lm.connection"),
    ]:
        with pytest.raises(InvalidArgument) as err:
            connections.resolve(config, "lm")
        assert err.value.field == field, err.value
        if field in ("lm.max_tokens", "lm.temperature"):
            assert "'fake'" in err.value.problem
    # a connection whose key variable this server lacks cannot be used (and says which variable)
    unset = Connections.load(connections_file(tmp_path, provider), environ={})
    with pytest.raises(FailedPrecondition, match="FAKE_PROVIDER_KEY is not set"):
        unset.resolve(LMConfig(connection="keyed", model="m1"))


@pytest.mark.usefixtures("server_env")
def test_request_endpoints_only_for_listed_hosts_and_named_key_variables(
    provider: FakeProvider, tmp_path: Path
) -> None:
    server = optimizer_thread(
        tmp_path,
        lm_connections=str(connections_file(tmp_path, provider)),
        allow_request_endpoints=(f"127.0.0.1:{provider.port}",),
    )
    try:
        with OptimizerClient(server.address, timeout=60) as opt:
            refused = [
                # another port of the same host
                (
                    pb.LMConfig(connection="fake", model="m1", api_base="http://127.0.0.1:9/v1"),
                    BAD,
                    "lm.api_base",
                ),
                # a variable of the server's environment the connections file does not name
                (
                    pb.LMConfig(
                        connection="fake",
                        model="m1",
                        api_base=provider.api_base,
                        api_key_env="AWS_SECRET_ACCESS_KEY",
                    ),
                    BAD,
                    "lm.api_key_env",
                ),
                # a key in the URL
                (
                    pb.LMConfig(
                        connection="fake",
                        model="m1",
                        api_base=f"http://u:sk-url-123456@127.0.0.1:{provider.port}/v1",
                    ),
                    BAD,
                    "lm.api_base",
                ),
                (pb.LMConfig(connection="fake", model="m2", api_base=provider.api_base), DENIED, "lm.model"),
            ]
            for lm, code, field in refused:
                with pytest.raises(grpc.RpcError) as err:
                    job(opt, lm, "endpoints")
                assert err.value.code() == code and field in err.value.details(), err.value.details()
                assert PLANTED not in err.value.details() and "sk-url" not in err.value.details()
            assert provider.received == []
            # a listed host, with a variable the file names: allowed, and recorded as such
            events = job(
                opt,
                pb.LMConfig(
                    connection="fake", model="m1", api_base=provider.api_base, api_key_env="FAKE_PROVIDER_KEY"
                ),
            )
            assert events[-1].WhichOneof("kind") == "completed", events[-1]
            version = opt.get_version("t", events[-1].completed.version)
            assert (version.lm.connection, version.lm.api_base, version.lm.api_key_env) == (
                "fake",
                provider.api_base,
                "FAKE_PROVIDER_KEY",
            )
    finally:
        server.stop()
    assert set(provider.authorizations) == {f"Bearer {FAKE_KEY}"}


# ---------------------------------------------------------------------- the key sent


@pytest.mark.usefixtures("server_env")
def test_the_connections_key_or_a_placeholder_is_sent_never_the_environments(
    provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """litellm falls back to OPENAI_API_KEY (and DSPy's native engine to the provider's
    variables) whenever its key is empty: every call gets the connection's key, or a
    placeholder no provider accepts. The third connection has no api_base: the provider's
    own endpoint, which the operator's OPENAI_BASE_URL points at the fake here."""
    monkeypatch.setenv("OPENAI_BASE_URL", provider.api_base)
    extra = '[connections.provider-default]\nprovider = "openai/"\nmodels = ["m1"]\n'
    server = optimizer_thread(tmp_path, lm_connections=str(connections_file(tmp_path, provider, extra)))
    try:
        with OptimizerClient(server.address, timeout=60) as opt:
            assert (
                job(opt, pb.LMConfig(connection="fake", model="m1"), "keyless")[-1].WhichOneof("kind")
                == "completed"
            )
            keyless = set(provider.authorizations)
            del provider.received[:]
            assert (
                job(opt, pb.LMConfig(connection="keyed", model="m1"), "keyed")[-1].WhichOneof("kind")
                == "completed"
            )
            keyed = set(provider.authorizations)
            del provider.received[:]
            lm = pb.LMConfig(connection="provider-default", model="m1")
            assert job(opt, lm, "default-endpoint")[-1].WhichOneof("kind") == "completed"
            default_endpoint = set(provider.authorizations)
            events = list(opt.evaluate("keyless", "1.0.0", dataset=ROWS[:2]))
            assert events[-1].report.examples == 2
    finally:
        server.stop()
    assert keyless == {f"Bearer {PLACEHOLDER_KEY}"}
    assert keyed == {f"Bearer {FAKE_KEY}"}
    assert default_endpoint == {f"Bearer {PLACEHOLDER_KEY}"}
    assert not any(AMBIENT in a or PLANTED in a for a in provider.authorizations)
