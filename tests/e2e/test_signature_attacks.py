"""Signature strings are data: no annotation trick imports a module or echoes the server.

Every trick goes through the real servers: StartOptimization, Evaluate (spec + state_json),
ImportProgram, and the gateway's load of a stored version (a VersionRegistered whose
artifact carries the trick, written into the log with the store API as a tampering or
older writer would, valid digest and all). Each must be INVALID_ARGUMENT or
FAILED_PRECONDITION naming the field, append nothing, leave a planted secret out of every
reply, and import nothing.

The import probe is a module made for this run under a name nothing can install
(`dspyops_import_probe_<random>`), on sys.path, whose import writes a marker file. DSPy's
own parser imports the first name of a dotted annotation (`probe.X` imports `probe`), so
the probe must be a top-level module for the test to catch it; the servers run in this
process, so `sys.modules` is theirs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from dspyops.artifacts import canonical_json, sha256_hex
from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import open_store
from dspyops.events import decode, new_event
from dspyops.names import program_stream
from dspyops.proto import events_pb2 as pb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()[:12]
SECRET = f"sk-planted-{uuid.uuid4().hex}"
SECRET_VAR = "DSPYOPS_TEST_PLANTED_SECRET"
PROBE = f"dspyops_import_probe_{uuid.uuid4().hex[:12]}"
REFUSED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}


def tricks(probe: str) -> list[str]:
    """Signature strings that DSPy's own parser would resolve by importing or attribute walks."""
    return [
        "text: os.environ -> label",
        f"text: os.environ['{SECRET_VAR}'] -> label",
        "text: this.s.__class__ -> label",
        f"text: {probe}.X -> label",
        f"text: {probe} -> label",
        f"text -> label: {probe}.X",
        f"text: list[{probe}.X] -> label",
        f"text: dict[str, {probe}.X] -> label",
        f"text: Optional[{probe}.X] -> label",
        f"text: {probe}.X | None -> label",
        f"text: Union[str, {probe}.X] -> label",
        f"text: Literal[{probe}.X] -> label",
        f"text: __import__('{probe}') -> label",
        f"text: importlib.import_module('{probe}') -> label",
        "text: __builtins__ -> label",
        "text: sys.modules -> label",
        "text: str.__class__.__mro__ -> label",
        "text: ().__class__.__base__.__subclasses__() -> label",
        f"text: Field(default={probe}.X) -> label",
        "text: (lambda: __import__('os'))() -> label",
        "text: f'{__import__(\"os\").environ}' -> label",
        f"text: '{probe}' -> label",
        "text: typing.get_type_hints -> label",
        "text: dspy.Image -> label",
        "text: " + "list[" * 40 + f"{probe}.X" + "]" * 40 + " -> label",
        "text: " + "Optional[" * 12 + "str" + "]" * 12 + " -> label",
        "text: " + " | ".join(["str"] * 30) + f" | {probe}.X -> label",
        "text: " + f"{probe}." * 300 + "X -> label",
        "text -> " + ", ".join(f"f{i}" for i in range(2000)),
        "text: \x00 -> label",
    ]


@dataclass
class Stack:
    opt: OptimizerClient
    gw: GatewayClient
    log: str
    state_json: bytes
    marker: Path
    evil: dict[str, str]  # trick -> the stored version that carries it


def _probe_imported(marker: Path) -> bool:
    return marker.exists() or PROBE in sys.modules


def _write_probe(tmp: Path) -> Path:
    """A top-level module whose import leaves a marker file (and would run any code)."""
    package_dir = tmp / "probe-path"
    package_dir.mkdir()
    marker = tmp / "imported.marker"
    (package_dir / f"{PROBE}.py").write_text(
        "import os\nfrom pathlib import Path\n"
        f"Path(os.environ.get('DSPYOPS_TEST_PROBE_MARKER', {str(marker)!r})).write_text('imported')\n"
        "X = str\n"
    )
    return marker


def _register_evil_versions(log: str, signatures: list[str]) -> dict[str, str]:
    """Copy version 1.0.0 of "tickets" once per trick, with the trick as its signature: a
    well-formed artifact whose digest verifies, appended straight to the log."""
    store = open_store(log)
    try:
        stream = program_stream("tickets")
        events = store.read_stream(stream)
        registered = next(
            m for m in (decode(e) for e in events) if isinstance(m, pb.VersionRegistered) and m.version
        )
        body = json.loads(registered.artifact)
        evil: dict[str, str] = {}
        payloads = []
        for i, signature in enumerate(signatures):
            version = f"{i + 2}.0.0"
            body["spec"] = {**body["spec"], "signature": signature}
            artifact = canonical_json(body)
            message = pb.VersionRegistered()
            message.CopyFrom(registered)
            message.version = version
            message.spec.signature = signature
            message.artifact = artifact
            message.artifact_digest = sha256_hex(artifact)
            payloads.append(new_event(message))
            evil[signature] = version
        store.append(stream, payloads, store.stream_version(stream))
        return evil
    finally:
        store.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("signature-attacks")
    marker = _write_probe(tmp)
    sys.path.insert(0, str(tmp / "probe-path"))
    os.environ[SECRET_VAR] = SECRET
    log = str(tmp / "log.db")
    config = OptimizerConfig(log=log, data_dir=tmp / "data")
    first = ServerThread(lambda: start_optimizer(config))
    with OptimizerClient(first.address) as opt:
        done = list(
            opt.start_optimization("tickets", "text -> label", trainset=ROWS, optimizer="LabeledFewShot")
        )
        assert done[-1].WhichOneof("kind") == "completed"
        state_json = opt.export_version("tickets", "1.0.0").state_json
    first.stop()
    # Written while no optimizer holds the log, as an older server or a tampering writer would.
    evil = _register_evil_versions(log, tricks(PROBE))
    optimizer = ServerThread(lambda: start_optimizer(config))
    opt = OptimizerClient(optimizer.address)
    opt.create_deployment("web", "tickets")
    opt.set_routes("web", {"1.0.0": 1.0})
    for i, version in enumerate(evil.values()):
        opt.create_deployment(f"evil-{i}", "tickets")
        opt.set_routes(f"evil-{i}", {version: 1.0})
    gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
    gw = GatewayClient(gateway.address)
    head = opt.read_log(0, 1).head
    assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
    try:
        yield Stack(opt, gw, log, state_json, marker, evil)
    finally:
        gw.close()
        opt.close()
        gateway.stop()
        optimizer.stop()
        sys.path.remove(str(tmp / "probe-path"))
        os.environ.pop(SECRET_VAR, None)


def _refused(stack: Stack, call: Callable[[], object], field: str) -> str:
    head = stack.opt.read_log(0, 1).head
    with pytest.raises(grpc.RpcError) as err:
        call()
    details = err.value.details() or ""
    assert err.value.code() in REFUSED, (err.value.code(), details[:300])
    assert field in details, details[:300]
    assert SECRET not in details and "environ(" not in details and "PYTHONPATH" not in details
    assert len(details) < 2000  # the annotation is echoed cut, never whole
    assert not _probe_imported(stack.marker), "a signature string imported a module"
    assert stack.opt.read_log(0, 1).head == head, "a refused request appended to the log"
    return details


TRICKS = tricks(PROBE)
IDS = [f"trick{i}" for i in range(len(TRICKS))]


@pytest.mark.parametrize("signature", TRICKS, ids=IDS)
def test_start_optimization_refuses_the_trick(stack: Stack, signature: str) -> None:
    def call() -> object:
        return list(
            stack.opt.start_optimization("tickets2", signature, trainset=ROWS, optimizer="LabeledFewShot")
        )

    _refused(stack, call, "spec.signature")


@pytest.mark.parametrize("signature", TRICKS, ids=IDS)
def test_evaluate_with_spec_and_state_refuses_the_trick(stack: Stack, signature: str) -> None:
    def call() -> object:
        spec = pb.ProgramSpec(module="Predict", signature=signature)
        return list(stack.opt.evaluate(spec=spec, state_json=stack.state_json, dataset=ROWS[:2]))

    _refused(stack, call, "spec.signature")


@pytest.mark.parametrize("signature", TRICKS, ids=IDS)
def test_import_program_refuses_the_trick(stack: Stack, signature: str) -> None:
    _refused(
        stack, lambda: stack.opt.import_program("imported", signature, stack.state_json), "spec.signature"
    )


@pytest.mark.parametrize("signature", TRICKS, ids=IDS)
def test_a_stored_version_with_the_trick_is_refused_by_the_gateway(stack: Stack, signature: str) -> None:
    version = stack.evil[signature]
    deployment = f"evil-{list(stack.evil).index(signature)}"
    details = _refused(stack, lambda: stack.gw.predict(deployment, {"text": "my invoice"}, "user-1"), version)
    assert "signature" in details
    # still serving, the good version too
    assert stack.gw.predict("web", {"text": "my invoice is wrong"}, "user-2").version == "1.0.0"


@pytest.mark.parametrize("signature", TRICKS[:6], ids=IDS[:6])
def test_a_stored_version_with_the_trick_is_refused_by_evaluate_and_compare(
    stack: Stack, signature: str
) -> None:
    version = stack.evil[signature]
    _refused(stack, lambda: list(stack.opt.evaluate("tickets", version, dataset=ROWS[:2])), "signature")
    _refused(
        stack,
        lambda: stack.opt.compare_versions("tickets", "1.0.0", version, dataset=ROWS[:2], timeout=60),
        "signature",
    )


def test_the_probe_really_imports_and_marks(stack: Stack, tmp_path: Path) -> None:
    """The probe must work, or the checks above prove nothing: import it in a subprocess."""
    marker = tmp_path / "sanity.marker"
    env = {
        **os.environ,
        "PYTHONPATH": str(stack.marker.parent / "probe-path"),
        "DSPYOPS_TEST_PROBE_MARKER": str(marker),
    }
    subprocess.run([sys.executable, "-c", f"import {PROBE}"], env=env, check=True, timeout=60)
    assert marker.read_text() == "imported"
    assert not _probe_imported(stack.marker)
