"""Authentication (bearer tokens with roles), TLS and mutual TLS on real servers, and a
planted API key that must not appear in the log, artifacts, errors or service logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dspyops.auth import TokenFileError, hash_token, load_tokens
from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from dspyops.rpc import Security
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.fake_provider import FakeProvider
from tests.support.harness import ServerThread, ticket_rows, wait_until
from tests.support.pki import make_pki

TOKENS = {"reader": "r-token-1", "operator": "o-token-2", "deployer": "d-token-3", "admin": "a-token-4"}
ROWS = ticket_rows()[:20]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    root = make_pki(tmp_path_factory.mktemp("pki"))
    (root / "tokens").write_text(
        "# sha256 role name\n"
        + "".join(f"{hash_token(token)} {role} {role}-user\n" for role, token in TOKENS.items())
    )
    return root


@pytest.fixture(scope="module")
def secured(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("secured")
    log = str(tmp / "log.db")
    tls = Security(
        tokens_file=str(pki / "tokens"), tls_cert=str(pki / "server.crt"), tls_key=str(pki / "server.key")
    )
    optimizer = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data", security=tls))
    )
    # its learning loop's client of the secured optimizer: an operator token over TLS (loop off:
    # SetLearningPolicy asks the optimizer what it runs through it)
    config = GatewayConfig(
        log=log,
        canary_interval=0,
        security=Security(tokens_file=str(pki / "tokens")),
        learning_interval=0,
        learning_optimizer=optimizer.address,
        learning_token=TOKENS["operator"],
        learning_tls_ca=str(pki / "ca.crt"),
    )
    gateway = ServerThread(lambda: start_gateway(config))
    yield optimizer.address, gateway.address
    gateway.stop()
    optimizer.stop()


def optimizer(address: str, pki: Path, role: str | None) -> OptimizerClient:
    return OptimizerClient(
        address, timeout=10, token=TOKENS[role] if role else "", tls_ca=str(pki / "ca.crt")
    )


def test_roles_decide_what_a_token_may_do(secured: tuple[str, str], pki: Path) -> None:
    address, gateway_address = secured
    with optimizer(address, pki, None) as anonymous:
        with pytest.raises(grpc.RpcError) as err:
            anonymous.list_programs()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with OptimizerClient(address, timeout=10, token="wrong", tls_ca=str(pki / "ca.crt")) as wrong:
        with pytest.raises(grpc.RpcError) as err:
            list(wrong.subscribe_log(0))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    with (
        optimizer(address, pki, "reader") as reader,
        optimizer(address, pki, "operator") as operator,
        optimizer(address, pki, "deployer") as deployer,
        optimizer(address, pki, "admin") as admin,
    ):
        assert reader.list_programs().programs == []
        assert [c.name for c in reader.list_connections().connections] == [
            "offline"
        ]  # a reader may list them
        with pytest.raises(grpc.RpcError) as err:
            list(reader.start_optimization("t", "text -> label", trainset=ROWS, optimizer="LabeledFewShot"))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "operator" in err.value.details()
        events = list(
            operator.start_optimization("t", "text -> label", trainset=ROWS, optimizer="LabeledFewShot")
        )
        assert events[-1].WhichOneof("kind") == "completed"
        with pytest.raises(grpc.RpcError) as err:
            operator.create_deployment("web", "t")
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        corpus = [{"id": "refunds", "text": "Refunds take 5 days."}]
        for role in (reader, deployer):  # a corpus changes what new versions retrieve: operators'
            with pytest.raises(grpc.RpcError) as err:
                role.register_corpus("help", corpus)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "operator" in err.value.details()
        assert operator.register_corpus("help", corpus).count == 1
        assert [c.corpus for c in reader.list_corpora().corpora] == ["help"]
        head = admin.read_log(0, 1).head
        assert deployer.create_deployment("web", "t").routes == []
        assert deployer.set_routes("web", {"1.0.0": 1.0}).routes[0].version == "1.0.0"
        assert admin.read_log(0, 1).head == head + 2

    with GatewayClient(gateway_address, timeout=10, token=TOKENS["reader"]) as gw:
        assert wait_until(lambda: gw.list_deployment_states().log_position >= head + 2)
        prediction = gw.predict("web", {"text": "refund"})
        gw.record_outcome(prediction.prediction_id, 1.0)
        with pytest.raises(grpc.RpcError) as err:
            gw.rollback("web", 1)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as err:  # a judge spends LM calls: operators attach evaluators
            gw.set_evaluator("web", "exact", metric="exact_match")
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "operator" in str(err.value.details())
        assert list(gw.list_evaluators("web").evaluators) == []  # a reader may list them
    with GatewayClient(gateway_address, timeout=10, token=TOKENS["operator"]) as gw:
        assert gw.set_evaluator("web", "exact", metric="exact_match").source == "evaluator:exact"
    # a learning policy starts jobs: operators'; pausing it is deployers'; its status is readers'
    for role in ("reader", "deployer"):
        with GatewayClient(gateway_address, timeout=10, token=TOKENS[role]) as gw:
            with pytest.raises(grpc.RpcError) as err:
                gw.set_learning_policy("web", optimizer="LabeledFewShot", on_drift=True)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "operator" in err.value.details()
    with GatewayClient(gateway_address, timeout=10, token=TOKENS["operator"]) as gw:
        assert gw.set_learning_policy("web", optimizer="LabeledFewShot", on_drift=True).enabled
        with pytest.raises(grpc.RpcError) as err:  # the catalog came from the optimizer, over TLS
            gw.set_learning_policy("web", optimizer="NoSuchOptimizer", on_drift=True)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "known: " in err.value.details()
    with GatewayClient(gateway_address, timeout=10, token=TOKENS["reader"]) as gw:
        assert gw.get_learning_status("web").enabled
        with pytest.raises(grpc.RpcError) as err:
            gw.pause_learning("web")
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with GatewayClient(gateway_address, timeout=10, token=TOKENS["deployer"]) as gw:
        assert gw.pause_learning("web").paused
    with GatewayClient(gateway_address, timeout=10) as anonymous_gw:
        with pytest.raises(grpc.RpcError) as err:
            anonymous_gw.predict("web", {"text": "refund"})
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with grpc.insecure_channel(gateway_address) as channel:  # health probes carry no token
        check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert check.status == health_pb2.HealthCheckResponse.SERVING


def test_every_event_records_the_actor_that_caused_it(secured: tuple[str, str], pki: Path) -> None:
    """The token's name goes into the log with each event: a job's events are its submitter's
    (written from the job's own thread), registry and deployment commands their caller's."""
    address, gateway_address = secured
    with (
        optimizer(address, pki, "operator") as operator,
        optimizer(address, pki, "deployer") as deployer,
        optimizer(address, pki, "admin") as admin,
    ):
        events = list(
            operator.start_optimization("actors", "text -> label", trainset=ROWS, optimizer="LabeledFewShot")
        )
        job_id = events[-1].job_id
        deployer.create_deployment("actors-web", "actors")
        deployer.set_routes("actors-web", {"1.0.0": 1.0})
        admin.set_version_status("actors", "1.0.0", "staging")
        after_routes = admin.read_log(0, 1).head
        with GatewayClient(gateway_address, timeout=10, token=TOKENS["deployer"]) as gw:
            assert wait_until(lambda: gw.list_deployment_states().log_position >= after_routes)
            rolled_back = gw.rollback("actors-web", after_routes - 1, reason="actor check").log_position
            served = gw.predict("actors-web", {"text": "refund"}, as_of=rolled_back)
            why = gw.explain_prediction(served.prediction_id)
            assert (why.change, why.changed_by, why.changed_position) == (
                "RolledBack",
                "deployer-user",
                rolled_back,
            )

        def actors(prefix: str) -> list[tuple[str, str]]:
            log = admin.read_log(0, 1000, prefix).events
            return [(e.type.rsplit(".", 1)[-1], e.actor) for e in log]

        job = actors(f"job-{job_id}")
        # the job's own events are the submitter's; a replica claiming it (or renewing its
        # lease) acts for itself: the system
        lease = {"JobClaimed", "JobLeaseRenewed", "JobRetried"}
        assert job and {actor for kind, actor in job if kind not in lease} == {"operator-user"}, job
        assert {actor for kind, actor in job if kind in lease} == {"system"}, job
        assert ("JobCompleted", "operator-user") in job
        program = actors("program-actors")
        assert ("VersionRegistered", "operator-user") in program
        assert ("VersionStatusChanged", "admin-user") in program
        deployment = actors("deployment-actors-web")
        assert deployment == [
            ("DeploymentCreated", "deployer-user"),
            ("RoutesSet", "deployer-user"),
            ("RolledBack", "deployer-user"),
        ]


def test_a_remote_gateway_tails_a_secured_optimizer(
    secured: tuple[str, str], pki: Path, tmp_path: Path
) -> None:
    config = GatewayConfig(
        optimizer=secured[0],
        predictions=str(tmp_path / "p.db"),
        canary_interval=0,
        upstream_token=TOKENS["reader"],
        upstream_tls_ca=str(pki / "ca.crt"),
    )
    remote = ServerThread(lambda: start_gateway(config))
    try:
        with (
            optimizer(secured[0], pki, "operator") as operator,
            GatewayClient(remote.address, timeout=10) as gw,
        ):
            # events of its own, so the test does not depend on the ones before it
            job = operator.start_optimization(
                "remote", "text -> label", trainset=ROWS, optimizer="LabeledFewShot"
            )
            events = list(job)
            assert events[-1].WhichOneof("kind") == "completed"
            head = operator.read_log(0, 1).head
            assert wait_until(lambda: gw.list_deployment_states().log_position >= head, 10)
    finally:
        remote.stop()


def test_tls_refuses_clients_that_do_not_trust_the_server(secured: tuple[str, str], pki: Path) -> None:
    with OptimizerClient(secured[0], timeout=5, token=TOKENS["admin"]) as plaintext:
        with pytest.raises(grpc.RpcError) as err:
            plaintext.list_programs()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_requires_a_client_certificate(pki: Path, tmp_path: Path) -> None:
    security = Security(
        tls_cert=str(pki / "server.crt"), tls_key=str(pki / "server.key"), tls_client_ca=str(pki / "ca.crt")
    )
    server = ServerThread(
        lambda: start_optimizer(
            OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "data", security=security)
        )
    )
    try:
        with OptimizerClient(server.address, timeout=5, tls_ca=str(pki / "ca.crt")) as no_cert:
            with pytest.raises(grpc.RpcError) as err:
                no_cert.list_programs()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        with OptimizerClient(
            server.address,
            timeout=5,
            tls_ca=str(pki / "ca.crt"),
            tls_cert=str(pki / "client.crt"),
            tls_key=str(pki / "client.key"),
        ) as with_cert:
            assert with_cert.list_programs().programs == []
    finally:
        server.stop()


def test_token_files_refuse_plain_tokens_and_unknown_roles(tmp_path: Path) -> None:
    for content, problem in [
        ("s3cret reader bob\n", "sha256 hex"),
        (f"{'a' * 64} root bob\n", "unknown role"),
        ("# nothing\n", "no tokens"),
        (f"{'a' * 64} reader\n", "expected"),
        (f"{'a' * 64} reader bob\x07\n", "printable"),
        (f"{'a' * 64} reader {'b' * 257}\n", "printable"),
    ]:
        (tmp_path / "tokens").write_text(content)
        with pytest.raises(TokenFileError, match=problem):
            load_tokens(tmp_path / "tokens")


def _serve(name: str, args: list[str], tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`dspyops serve` as a real service process, stdout and stderr each to a file."""
    port_file = tmp_path / f"{name}.port"
    process = subprocess.Popen(
        [sys.executable, "-m", "dspyops.cli", "serve", *args, "--port", "0", "--port-file", str(port_file)],
        stdout=open(tmp_path / f"{name}.stdout", "w"),
        stderr=open(tmp_path / f"{name}.stderr", "w"),
        env=env,
    )
    assert wait_until(lambda: port_file.exists() and bool(port_file.read_text()), 60), name
    return process, f"127.0.0.1:{port_file.read_text()}"


def _leaks(root: Path, secret: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


def test_a_planted_api_key_appears_nowhere(tmp_path: Path) -> None:
    """The connection's key is sent to the provider, and the provider echoes it back in its
    error body (Authorization header included). It must then appear in nothing a service
    writes or answers: log (and -wal), artifacts, snapshots, prediction records (and -wal),
    both services' stdout and stderr (DSPy's and litellm's lines included), events, replies
    and statuses."""
    key = "sk-planted-" + "7f3a9c" * 6
    ambient = "sk-ambient-" + "2e8b1d" * 6
    provider = FakeProvider().start()
    connections = tmp_path / "connections.toml"
    connections.write_text(
        f'[connections.fake]\napi_base = "{provider.api_base}"\n'
        'api_key_env = "PLANTED_API_KEY"\nmodels = ["m1"]\n'
    )
    env = dict(
        os.environ,
        PLANTED_API_KEY=key,
        OPENAI_API_KEY=ambient,
        DSPYOPS_LOG_LEVEL="debug",
        LITELLM_LOG="DEBUG",  # litellm's own debug lines on stderr: they must be scrubbed too
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    log = str(tmp_path / "log.db")
    common = ["--lm-connections", str(connections)]
    optimizer, address = _serve(
        "optimizer", ["optimizer", "--log", log, "--data-dir", str(tmp_path / "data"), *common], tmp_path, env
    )
    gateway, gateway_address = _serve(
        "gateway", ["gateway", "--log", log, "--canary-interval", "0", *common], tmp_path, env
    )
    replies: list[str] = []
    lm = pb.LMConfig(connection="fake", model="m1", max_tokens=16)
    try:
        with OptimizerClient(address, timeout=60) as opt, GatewayClient(gateway_address, timeout=60) as gw:
            events = list(
                opt.start_optimization(
                    "t",
                    "text -> label",
                    trainset=ROWS[:4],
                    optimizer="LabeledFewShot",
                    params={"k": 2},
                    lm=lm,
                )
            )
            assert events[-1].WhichOneof("kind") == "completed", events[-1]
            replies.append(str(events))
            opt.create_deployment("web", "t")
            head = opt.set_routes("web", {"1.0.0": 1.0}).log_position
            provider.mode = "echo_error"  # from here on every call fails, echoing the key

            failing = list(
                opt.start_optimization(
                    "t2", "text -> label", trainset=ROWS[:4], optimizer="BootstrapFewShot", lm=lm
                )
            )
            replies.append(str(failing))
            replies.append(str(opt.get_job(failing[-1].job_id)))
            replies.append(str(opt.list_jobs()))
            report = list(opt.evaluate("t", "1.0.0", dataset=ROWS[:3], include_results=True))[-1].report
            replies.append(str(report))
            assert report.errors == 3
            # the provider's echo reached the service and was scrubbed on the way out
            assert all(
                "invalid credentials" in r.error and "[redacted]" in r.error for r in report.results
            ), report
            spec_report = list(
                opt.evaluate(
                    spec=pb.ProgramSpec(module="Predict", signature="text -> label"),
                    state_json=opt.export_version("t", "1.0.0").state_json,
                    lm=lm,
                    dataset=ROWS[:1],
                    include_results=True,
                )
            )[-1].report
            assert spec_report.errors == 1
            replies.append(str(spec_report))
            assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
            with pytest.raises(grpc.RpcError) as err:
                gw.predict("web", {"text": "I was charged twice"})
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            replies.append(err.value.details() or "")
            replies.append(str(opt.get_version("t", "1.0.0")) + str(opt.export_version("t", "1.0.0")))
            replies.append(str(opt.list_connections()) + str(gw.list_connections()))
            for bad in (
                pb.LMConfig(connection="fake", model="m1", api_key_env=key),  # a pasted key instead of a name
                pb.LMConfig(
                    connection="fake", model="m1", api_base=f"http://u:{key}@127.0.0.1:{provider.port}/v1"
                ),
            ):
                with pytest.raises(grpc.RpcError) as err:
                    list(
                        opt.start_optimization(
                            "t", "text -> label", trainset=ROWS[:4], optimizer="LabeledFewShot", lm=bad
                        )
                    )
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                replies.append(err.value.details() or "")
            with pytest.raises(grpc.RpcError) as err:
                opt.list_versions(f"Bearer {key}")  # an echoed request value is scrubbed too
            replies.append(err.value.details() or "")
            # the key was really in play: the provider got it, and echoed it
            assert f"Bearer {key}" in provider.authorizations
            assert not any(ambient in a for a in provider.authorizations)
            # while running: the -wal files exist
            assert _leaks(tmp_path, key.encode()) == []
    finally:
        for process in (gateway, optimizer):
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        provider.stop()
    for reply in replies:
        assert key not in reply and ambient not in reply
    assert _leaks(tmp_path, key.encode()) == [] and _leaks(tmp_path, ambient.encode()) == []
    stderr = (tmp_path / "optimizer.stderr").read_text() + (tmp_path / "gateway.stderr").read_text()
    assert "predict_failed" in stderr and "[redacted]" in stderr  # the lines were there, scrubbed
    assert "PLANTED_API_KEY" in (tmp_path / "connections.toml").read_text()
