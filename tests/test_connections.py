"""LM connections: where a key may be sent is server configuration, never request data.

Real servers on loopback, a loopback fake provider (tests/fake_provider.py) that records
the Authorization header of every call it gets, and real connections files.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dspy
import grpc
import pytest

from dspyops.artifacts import canonical_json, sha256_hex
from dspyops.client import GatewayClient, OptimizerClient
from dspyops.connections import (
    PLACEHOLDER_KEY,
    Connections,
    ConnectionsFileError,
    parse_endpoint_allowlist,
)
from dspyops.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.lm import LMConfig
from dspyops.names import program_stream
from dspyops.programs import ProgramSpec, build_module, program_state
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.fake_provider import FakeProvider
from tests.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()[:6]
PLANTED = "planted-" + "5e1c7a" * 6  # a secret of the server's environment no connection names
AMBIENT = "sk-ambient-" + "9b2d4f" * 6  # the server's own OPENAI_API_KEY
FAKE_KEY = "sk-fake-provider-" + "31d0" * 6  # the key the "keyed" connection names
BAD = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers of these tests run in this process: their environment holds an AWS-style
    secret, an ambient OpenAI key, and the key one connection names."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PLANTED)
    monkeypatch.setenv("OPENAI_API_KEY", AMBIENT)
    monkeypatch.setenv("FAKE_PROVIDER_KEY", FAKE_KEY)


def connections_file(tmp_path: Path, provider: FakeProvider, extra: str = "") -> Path:
    path = tmp_path / "connections.toml"
    path.write_text(
        f"""
[connections.fake]
api_base = "{provider.api_base}"
models = ["m1", "family-*"]
default_max_tokens = 64
max_tokens_cap = 256
max_temperature = 1.0

[connections.keyed]
provider = "openai/"
api_base = "{provider.api_base}"
api_key_env = "FAKE_PROVIDER_KEY"
models = ["m1"]
input_usd_per_mtok = 2000.0
output_usd_per_mtok = 10000.0
{extra}
"""
    )
    return path


def optimizer_thread(tmp_path: Path, **config: object) -> ServerThread:
    log = str(tmp_path / "log.db")
    return ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp_path / "data", **config))  # type: ignore[arg-type]
    )


def gateway_thread(tmp_path: Path, **config: object) -> ServerThread:
    log = str(tmp_path / "log.db")
    return ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0, **config)))  # type: ignore[arg-type]


def job(opt: OptimizerClient, lm: pb.LMConfig, program: str = "t") -> list[opb.OptimizationEvent]:
    return list(
        opt.start_optimization(
            program, "text -> label", trainset=ROWS, optimizer="LabeledFewShot", params={"k": 2}, lm=lm
        )
    )


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


# ---------------------------------------------------------------------- gateways and versions


def _register_old_style(log: Path, program: str, lm: dict[str, object]) -> None:
    """A VersionRegistered as the code before connections wrote it: the artifact's lm dict
    and the event's LMConfig carry model string, api_base and api_key_env, no connection."""
    spec = ProgramSpec(module="Predict", signature="text -> label")
    body = {
        "spec": spec.to_dict(),
        "state": program_state(build_module(spec)),
        "lm": lm,
        "dspy_version": dspy.__version__,
    }
    artifact = canonical_json(body)
    event = pb.VersionRegistered(
        program=program,
        version="1.0.0",
        spec=pb.ProgramSpec(module="Predict", signature="text -> label"),
        lm=pb.LMConfig(
            model=str(lm["model"]),
            api_base=str(lm["api_base"]),
            api_key_env=str(lm["api_key_env"]),
            max_tokens=512,
        ),
        artifact_digest=sha256_hex(artifact),
        artifact=artifact,
        status=pb.DEVELOPMENT,
        lineage=pb.Lineage(optimizer="LabeledFewShot"),
    )
    store = open_store(str(log))
    try:
        store.append(program_stream(program), [new_event(event)], 0)
    finally:
        store.close()


def _old_lm(model: str, api_base: str = "", api_key_env: str = "") -> dict[str, object]:
    return {
        "model": model,
        "temperature": 0.0,
        "max_tokens": 512,
        "api_base": api_base,
        "api_key_env": api_key_env,
        "latency_ms": 0,
    }


@pytest.mark.usefixtures("server_env")
def test_gateways_resolve_a_versions_connection_by_name(
    provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version records connection + model; each gateway resolves the name against its own
    connections. One without that connection refuses, naming the version and the connection."""
    path = connections_file(tmp_path, provider)
    optimizer = optimizer_thread(tmp_path, lm_connections=str(path))
    try:
        with OptimizerClient(optimizer.address, timeout=60) as opt:
            events = job(opt, pb.LMConfig(connection="keyed", model="m1"), "remote")
            assert events[-1].WhichOneof("kind") == "completed"
            version = opt.get_version("remote", "1.0.0")
            assert (version.lm.connection, version.lm.model, version.lm.api_base, version.lm.api_key_env) == (
                "keyed",
                "m1",
                "",
                "",
            )
            opt.create_deployment("web", "remote")
            head = opt.set_routes("web", {"1.0.0": 1.0}).log_position
        bare = gateway_thread(tmp_path)
        try:
            with GatewayClient(bare.address) as gw:
                assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
                with pytest.raises(grpc.RpcError) as err:
                    gw.predict("web", {"text": "I was charged twice"})
                assert err.value.code() == PRECONDITION
                assert "1.0.0" in err.value.details() and "'keyed'" in err.value.details(), (
                    err.value.details()
                )
        finally:
            bare.stop()
        monkeypatch.delenv("FAKE_PROVIDER_KEY")  # a gateway whose environment lacks the key
        keyless = gateway_thread(tmp_path, lm_connections=str(path), predictions=str(tmp_path / "p1.db"))
        monkeypatch.setenv("FAKE_PROVIDER_KEY", FAKE_KEY)
        try:
            with GatewayClient(keyless.address) as gw:
                assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
                with pytest.raises(grpc.RpcError) as err:
                    gw.predict("web", {"text": "I was charged twice"})
                assert err.value.code() == PRECONDITION
                assert (
                    "1.0.0" in err.value.details() and "FAKE_PROVIDER_KEY is not set" in err.value.details()
                )
        finally:
            keyless.stop()
        served = gateway_thread(tmp_path, lm_connections=str(path), predictions=str(tmp_path / "p2.db"))
        try:
            with GatewayClient(served.address) as gw:
                assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
                del provider.received[:]
                assert gw.predict("web", {"text": "I was charged twice"}).outputs["label"] == "billing"
                assert provider.authorizations == [f"Bearer {FAKE_KEY}"]
        finally:
            served.stop()
    finally:
        optimizer.stop()


@pytest.mark.usefixtures("server_env")
def test_versions_from_before_connections_still_fold_and_serve(
    provider: FakeProvider, tmp_path: Path
) -> None:
    log = tmp_path / "log.db"
    _register_old_style(log, "old-offline", _old_lm("offline/nearest-demo"))
    _register_old_style(log, "old-remote", _old_lm("openai/m1", provider.api_base))
    _register_old_style(log, "old-secret", _old_lm("openai/m1", provider.api_base, "AWS_SECRET_ACCESS_KEY"))
    optimizer = optimizer_thread(tmp_path)
    try:
        with OptimizerClient(optimizer.address, timeout=60) as opt:
            assert sorted(p.program for p in opt.list_programs().programs) == [
                "old-offline",
                "old-remote",
                "old-secret",
            ]
            for name in ("old-offline", "old-remote", "old-secret"):
                opt.create_deployment(name, name)
                head = opt.set_routes(name, {"1.0.0": 1.0}).log_position
            # the optimizer evaluates the offline one; the remote one names an endpoint it does not allow
            assert list(opt.evaluate("old-offline", "1.0.0", dataset=ROWS[:2]))[-1].report.examples == 2
            with pytest.raises(grpc.RpcError) as err:
                list(opt.evaluate("old-remote", "1.0.0", dataset=ROWS[:2]))
            assert err.value.code() == PRECONDITION and "1.0.0" in err.value.details()
        strict = gateway_thread(tmp_path)
        try:
            with GatewayClient(strict.address) as gw:
                assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
                assert gw.predict("old-offline", {"text": "my card was charged twice"}).version == "1.0.0"
                for name in ("old-remote", "old-secret"):
                    with pytest.raises(grpc.RpcError) as err:
                        gw.predict(name, {"text": "hi"})
                    assert err.value.code() == PRECONDITION and "1.0.0" in err.value.details(), (
                        err.value.details()
                    )
        finally:
            strict.stop()
        assert provider.received == []
        allowing = gateway_thread(
            tmp_path,
            allow_request_endpoints=(f"127.0.0.1:{provider.port}",),
            predictions=str(tmp_path / "p2.db"),
        )
        try:
            with GatewayClient(allowing.address) as gw:
                assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
                # an endpoint this gateway allows: an ad-hoc connection, with the placeholder key
                assert gw.predict("old-remote", {"text": "hi"}).outputs["label"] == "billing"
                # ... but never with a variable no connection names (AWS_SECRET_ACCESS_KEY)
                with pytest.raises(grpc.RpcError) as err:
                    gw.predict("old-secret", {"text": "hi"})
                assert err.value.code() == PRECONDITION and PLANTED not in err.value.details()
        finally:
            allowing.stop()
    finally:
        optimizer.stop()
    assert provider.authorizations == [f"Bearer {PLACEHOLDER_KEY}"]


@pytest.mark.usefixtures("server_env")
def test_an_old_version_maps_to_the_connection_with_its_endpoint(
    provider: FakeProvider, tmp_path: Path
) -> None:
    log = tmp_path / "log.db"
    _register_old_style(log, "old-keyed", _old_lm("openai/m1", provider.api_base, "FAKE_PROVIDER_KEY"))
    optimizer = optimizer_thread(tmp_path)
    try:
        with OptimizerClient(optimizer.address, timeout=60) as opt:
            opt.create_deployment("web", "old-keyed")
            head = opt.set_routes("web", {"1.0.0": 1.0}).log_position
        gateway = gateway_thread(tmp_path, lm_connections=str(connections_file(tmp_path, provider)))
        try:
            with GatewayClient(gateway.address) as gw:
                assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
                assert gw.predict("web", {"text": "hi"}).outputs["label"] == "billing"
        finally:
            gateway.stop()
    finally:
        optimizer.stop()
    assert provider.authorizations == [f"Bearer {FAKE_KEY}"]  # the "keyed" connection: same endpoint and key


# ---------------------------------------------------------------------- ListConnections


@pytest.mark.usefixtures("server_env")
def test_list_connections_on_both_services_never_shows_a_key(provider: FakeProvider, tmp_path: Path) -> None:
    path = connections_file(tmp_path, provider)
    optimizer = optimizer_thread(tmp_path, lm_connections=str(path))
    gateway = gateway_thread(tmp_path, lm_connections=str(path))
    try:
        with OptimizerClient(optimizer.address) as opt, GatewayClient(gateway.address) as gw:
            for listed in (opt.list_connections().connections, gw.list_connections().connections):
                by_name = {c.name: c for c in listed}
                assert list(by_name) == ["fake", "keyed", "offline"]
                keyed = by_name["keyed"]
                assert (keyed.provider, keyed.endpoint, list(keyed.models), keyed.has_key) == (
                    "openai/",
                    provider.api_base,
                    ["m1"],
                    True,
                )
                assert (keyed.input_usd_per_mtok, keyed.output_usd_per_mtok) == (2000.0, 10000.0)
                assert (by_name["fake"].max_tokens_cap, by_name["fake"].default_max_tokens) == (256, 64)
                wire = b"".join(c.SerializeToString() for c in listed)
                assert FAKE_KEY.encode() not in wire and b"FAKE_PROVIDER_KEY" not in wire
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "dspyops.cli",
                "--gateway",
                gateway.address,
                "connections",
                "--gateway",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        assert '"name": "keyed"' in cli.stdout and FAKE_KEY not in cli.stdout
    finally:
        gateway.stop()
        optimizer.stop()


# ---------------------------------------------------------------------- prices


@pytest.mark.usefixtures("server_env")
def test_connection_prices_cost_calls_the_provider_reports_no_cost_for(
    provider: FakeProvider, tmp_path: Path
) -> None:
    """The fake provider reports tokens (100 in, 20 out per call) and no cost: the "keyed"
    connection's prices (2000 / 10000 USD per 1M tokens) make each call $0.40."""
    server = optimizer_thread(tmp_path, lm_connections=str(connections_file(tmp_path, provider)))
    try:
        with OptimizerClient(server.address, timeout=60) as opt:
            assert (
                job(opt, pb.LMConfig(connection="keyed", model="m1"), "priced")[-1].WhichOneof("kind")
                == "completed"
            )
            report = list(opt.evaluate("priced", "1.0.0", dataset=ROWS[:3]))[-1].report
            assert (report.usage.lm_calls, report.usage.input_tokens, report.usage.output_tokens) == (
                3,
                300,
                60,
            )
            assert report.usage.cost_usd == pytest.approx(3 * 0.40)
            events = opt.start_optimization(
                "budgeted",
                "text -> label",
                optimizer="LabeledFewShot",
                trainset=ROWS,
                lm=pb.LMConfig(connection="keyed", model="m1"),
                budget=pb.Budget(max_cost_usd=1.0),
            )
            last = list(events)[-1]
            assert last.WhichOneof("kind") == "cancelled", last
            assert last.cancelled.budget == "max_cost_usd"
            assert last.cancelled.usage.cost_usd > 1.0
            # the offline connection has no prices: the same budget never trips
            offline = list(
                opt.start_optimization("free", "text -> label", trainset=ROWS, optimizer="LabeledFewShot")
            )
            assert offline[-1].completed.usage.cost_usd == 0.0
    finally:
        server.stop()
