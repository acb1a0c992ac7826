"""The scrubber's rules, and its hooks: structlog output, every logging record (any library,
any handler, exceptions included), the service streams, protobuf messages, RPC statuses."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import grpc
import pytest

from dspyops.auth import hash_token
from dspyops.client import OptimizerClient
from dspyops.logs import ScrubbingStream, configure
from dspyops.programs.build import build_module, program_state
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.scrub import REDACTED, Scrubber, learn_secrets, scrub
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread

SECRET = "sk-live-" + "c0ffee" * 6
TOKEN = "tok-reader-0042"


@pytest.fixture
def scrubber() -> Scrubber:
    s = Scrubber()
    s.learn_secrets([SECRET, "short", "sk-live"])
    s.learn_token_hashes([hash_token(TOKEN)])
    return s


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key={SECRET}!", f"key={REDACTED}!"),
        (f"{SECRET}{SECRET}", REDACTED * 2),
        ("sk-live is a prefix, not a secret", "sk-live is a prefix, not a secret"),  # too short to learn
        ("Authorization: Bearer abc.DEF-123_xyz", f"Authorization: Bearer {REDACTED}"),
        ('{"authorization": "Bearer eyJhbGciOi.J9x"}', f'{{"authorization": "Bearer {REDACTED}"}}'),
        ("authorization: Basic dXNlcjpwYXNzd29yZA==", f"authorization: Basic {REDACTED}"),
        ("x-api-key: sk-ant-0123456789", f"x-api-key: {REDACTED}"),
        ("?api_key=AIzaSyA-0123456789&q=1", f"?api_key={REDACTED}&q=1"),
        ("authorization: sk-bare-0123456789", f"authorization: {REDACTED}"),
        ("http://user:pass@host:8080/v1 and https://tok@h/x", "http://***@host:8080/v1 and https://***@h/x"),
        (f"token {TOKEN} was used", f"token {REDACTED} was used"),
        # what must survive: prose about tokens, addresses without userinfo, e-mail addresses
        (
            "authorization: a valid bearer token is required",
            "authorization: a valid bearer token is required",
        ),
        ("http://127.0.0.1:8080/v1/chat", "http://127.0.0.1:8080/v1/chat"),
        ("mail ops@example.com", "mail ops@example.com"),
        ("", ""),
    ],
)
def test_rules(scrubber: Scrubber, text: str, expected: str) -> None:
    assert scrubber(text) == expected


def test_learning_reports_values_too_short_to_scrub() -> None:
    s = Scrubber()
    assert s.learn_secrets(["x", "", SECRET]) == ["x"]
    assert s("x marks the spot") == "x marks the spot" and s(SECRET) == REDACTED


def test_protobuf_messages_are_scrubbed_everywhere_but_bytes(scrubber: Scrubber) -> None:
    report = pb.EvaluationReport(program="p", metric=f"m {SECRET}")
    report.results.add(inputs={"text": f"said {SECRET}"}, error=f"LMAuthError: Bearer {SECRET}")
    report.per_class.add(label=SECRET)
    event = pb.Event(type="t", raw_payload=SECRET.encode(), actor=SECRET)
    event.payload.job_failed.error = SECRET
    scrubber.message(report)
    scrubber.message(event)
    assert SECRET not in str(report) and str(report).count(REDACTED) == 4
    assert event.payload.job_failed.error == REDACTED and event.actor == REDACTED
    assert event.raw_payload == SECRET.encode()  # the stored bytes, whose hash must keep verifying


def test_structlog_lines_are_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    learn_secrets([SECRET])
    log = configure("test-scrub", level="debug")
    try:
        raise RuntimeError(f"provider said Authorization: Bearer {SECRET}")
    except RuntimeError:
        log.exception(
            "call_failed", url=f"http://u:{SECRET}@h/v1", nested={"k": [SECRET]}, obj=ValueError(SECRET)
        )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert SECRET not in line
    assert event["url"] == "http://***@h/v1" and event["nested"] == {"k": [REDACTED]}
    assert "RuntimeError" in event["exception"] and REDACTED in event["exception"]


def test_logging_records_of_any_library_are_scrubbed() -> None:
    """A handler attached before the scrubber was installed (as litellm's and DSPy's are, at
    import) still never sees the secret: the record is scrubbed when it is created."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    third_party = logging.getLogger("some.library")
    third_party.addHandler(handler)
    third_party.propagate = False
    try:
        learn_secrets([SECRET])
        configure("test-scrub")  # installs the record factory, once per process
        third_party.warning("calling with key %s at %s", SECRET, "http://a:b@h")
        try:
            raise ConnectionError(f"401 from provider: {{'authorization': 'Bearer {SECRET}'}}")
        except ConnectionError:
            third_party.exception("request failed")
        third_party.error("stack", stack_info=True)
        for name in ("dspy", "LiteLLM"):
            logging.getLogger(name).addHandler(handler)
            logging.getLogger(name).error("echo %s", SECRET)
            logging.getLogger(name).removeHandler(handler)
    finally:
        third_party.removeHandler(handler)
    out = stream.getvalue()
    assert SECRET not in out
    assert "calling with key [redacted] at http://***@h" in out
    assert "ConnectionError: 401 from provider" in out  # the traceback is kept, scrubbed
    assert out.count("echo [redacted]") == 2


def test_service_streams_scrub_lines_split_over_writes() -> None:
    learn_secrets([SECRET])
    inner = io.StringIO()
    stream = ScrubbingStream(inner)
    stream.write(f"progress {SECRET[:10]}")
    stream.write(f"{SECRET[10:]} done\nnext ")
    assert inner.getvalue() == f"progress {REDACTED} done\n"
    stream.write(f"Bearer {SECRET}")
    stream.flush()
    assert SECRET not in inner.getvalue() and inner.getvalue().endswith(f"next Bearer {REDACTED}")
    assert stream.isatty() is False  # everything else is the inner stream's
    print("via print", SECRET, file=stream)
    stream.flush()
    assert SECRET not in inner.getvalue()
    assert sys.stderr is not stream


def test_rpc_status_details_are_scrubbed(tmp_path: Path) -> None:
    """A status echoes a prefix of the bad value (errors.shown): a value carrying a secret or
    credentials comes back redacted."""
    learn_secrets([SECRET])
    server = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path))
    )
    try:
        with OptimizerClient(server.address) as opt:
            for name in (f"x{SECRET}", "http://u:p4ssw0rd-0000@h", f"Bearer {TOKEN}-0123456789"):
                with pytest.raises(grpc.RpcError) as err:
                    opt.list_versions(name)
                details = err.value.details() or ""
                assert err.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
                assert "program" in details
                assert SECRET not in details and "p4ssw0rd" not in details and TOKEN not in details, details
    finally:
        server.stop()
    assert scrub(SECRET) == REDACTED


def test_free_text_of_a_command_is_scrubbed_before_it_enters_the_log(tmp_path: Path) -> None:
    """A key pasted into a command's free text (a reason) is redacted in the event itself:
    secrets never enter the log, not even the bytes of the file."""
    learn_secrets([SECRET])
    log = tmp_path / "log.db"
    server = ServerThread(lambda: start_optimizer(OptimizerConfig(log=str(log), data_dir=tmp_path)))
    try:
        with OptimizerClient(server.address) as opt:
            state = program_state(build_module(ProgramSpec(signature="text -> label")))
            opt.import_program("tickets", "text -> label", json.dumps(state).encode())
            opt.create_deployment("web", "tickets")
            reason = f"key {SECRET} and Bearer {TOKEN}-0123456789 via http://u:p4ssw0rd-0000@h"
            deployment = opt.set_routes("web", {"1.0.0": 1.0}, reason=reason)
            stored = opt.read_log(after=deployment.log_position - 1, limit=1).events[0]
            assert stored.payload.routes_set.reason.startswith("key " + REDACTED), stored.payload
            for secret in (SECRET, TOKEN, "p4ssw0rd"):
                assert secret not in stored.payload.routes_set.reason
    finally:
        server.stop()
    for path in tmp_path.glob("log.db*"):
        data = path.read_bytes()
        for secret in (SECRET, TOKEN, "p4ssw0rd"):
            assert secret.encode() not in data, (path.name, secret)
