"""LM connections as served: gateways resolve a version's connection by name, versions from
before connections still serve, ListConnections never shows a key, and prices cost calls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dspy
import grpc
import pytest

from dspyops.artifacts import canonical_json, sha256_hex
from dspyops.client import GatewayClient, OptimizerClient
from dspyops.connections import (
    PLACEHOLDER_KEY,
)
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.names import program_stream
from dspyops.programs.build import build_module, program_state
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from tests.support.connections import (
    FAKE_KEY,
    PLANTED,
    PRECONDITION,
    ROWS,
    connections_file,
    gateway_thread,
    job,
    optimizer_thread,
)
from tests.support.fake_provider import FakeProvider
from tests.support.harness import wait_until

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
