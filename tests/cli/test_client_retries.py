"""The client's own retries carry the same request_id, so a retry after a lost reply or a
timeout is answered from the log instead of carried out twice (issue 10, finding 6: "a
client retry after a timeout creates a second version"). Real optimizer, real client; the
network failure is a real TCP relay that drops the connection after the server committed,
and the timeout is a real SQLite write lock held on the log."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dspy
import grpc
import pytest

from dspyops.cli.main import main
from dspyops.client import OptimizerClient
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows, wait_until

SIG = "text -> label"
ROWS = ticket_rows()


def saved_state(tmp: Path, demos: int) -> bytes:
    program = dspy.Predict(SIG)
    program.demos = [dspy.Example(**row) for row in ROWS[:demos]]
    path = tmp / f"state-{demos}.json"
    program.save(str(path))
    return path.read_bytes()


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[ServerThread, str]]:
    log = str(tmp_path / "log.db")
    thread = ServerThread(lambda: start(OptimizerConfig(log=log, data_dir=tmp_path / "data")))
    yield thread, log
    thread.stop()


def head(client: OptimizerClient) -> int:
    return client.read_log(0, 1).head


class LosingRelay:
    """A loopback TCP relay to the server. On its first connection it passes the request
    through but holds back whatever the server sends once `request_bytes` have gone out,
    until `drop()` closes that connection: the server carried the call out, the client never
    hears of it. Later connections are relayed as they are."""

    def __init__(self, target: str, request_bytes: int) -> None:
        self.target = target.rsplit(":", 1)
        self.request_bytes = request_bytes
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self._first: list[socket.socket] = []
        self._sent = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection((self.target[0], int(self.target[1])))
            first = self.connections == 1
            if first:
                self._first = [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, first, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, first, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, first: bool, outbound: bool) -> None:
        try:
            while data := source.recv(65536):
                if first and outbound:
                    self._sent += len(data)  # counted before it reaches the server
                if first and not outbound and self._sent >= self.request_bytes:
                    continue  # the reply to the request: lost
                sink.sendall(data)
        except OSError:
            pass

    def drop(self) -> None:
        for sock in self._first:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # sends FIN and wakes the pump blocked in recv()
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self.drop()


def test_a_reply_lost_on_the_network_is_retried_and_answered_from_the_log(
    server: tuple[ServerThread, str], tmp_path: Path
) -> None:
    thread, _ = server
    state_json = saved_state(tmp_path, 2)
    with OptimizerClient(thread.address) as direct:
        before = head(direct)
        relay = LosingRelay(thread.address, request_bytes=len(state_json))
        results: list[object] = []
        client = OptimizerClient(relay.address, retries=0)  # only gRPC's own retry policy
        call = threading.Thread(target=lambda: results.append(client.import_program("lost", SIG, state_json)))
        try:
            call.start()
            assert wait_until(lambda: head(direct) > before, timeout=30), "the server never got the request"
            relay.drop()  # the server committed; its reply dies with the connection
            call.join(60)
        finally:
            client.close()
            relay.close()
        assert relay.connections >= 2, "the client did not retry"
        assert len(results) == 1 and isinstance(results[0], opb.ProgramVersion), results
        assert results[0].version == "1.0.0"
        assert head(direct) == before + 1, "the retry appended again"
        assert [v.version for v in direct.list_versions("lost").versions] == ["1.0.0"]


def test_a_call_past_its_deadline_is_sent_again_with_the_same_request_id(
    server: tuple[ServerThread, str], tmp_path: Path
) -> None:
    thread, log = server
    state_json = saved_state(tmp_path, 3)
    with OptimizerClient(thread.address, timeout=1.0, retries=4) as client:
        before = head(client)
        lock = sqlite3.connect(log, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the server's append waits behind this write lock
        results: list[object] = []

        def call() -> None:
            try:
                results.append(client.import_program("slow", SIG, state_json))
            except grpc.RpcError as exc:
                results.append(exc.code())

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(1.5)  # past the first attempt's deadline: the client has sent the request again
        lock.execute("ROLLBACK")
        lock.close()
        caller.join(60)
        assert len(results) == 1 and isinstance(results[0], opb.ProgramVersion), results
        assert results[0].version == "1.0.0"
        assert wait_until(lambda: head(client) == before + 1)
        assert [v.version for v in client.list_versions("slow").versions] == ["1.0.0"], (
            "a retry registered again"
        )


def test_each_call_gets_its_own_request_id_unless_given(
    server: tuple[ServerThread, str], tmp_path: Path
) -> None:
    thread, _ = server
    state_json = saved_state(tmp_path, 1)
    with OptimizerClient(thread.address) as client:
        # two calls are two requests: the second import of the same state is a patch version
        assert client.import_program("ids", SIG, state_json).version == "1.0.0"
        assert client.import_program("ids", SIG, state_json).version == "1.0.1"
        first = client.import_program("ids", SIG, state_json, request_id="retry-me")
        assert client.import_program("ids", SIG, state_json, request_id="retry-me") == first
        assert [v.version for v in client.list_versions("ids").versions] == ["1.0.0", "1.0.1", "1.0.2"]


def test_the_cli_sends_request_id_and_names_it_after_a_failure(
    server: tuple[ServerThread, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    thread, _ = server
    with OptimizerClient(thread.address) as client:
        client.import_program("cli", SIG, saved_state(tmp_path, 1))
        client.import_program("cli", SIG, saved_state(tmp_path, 2))
        before = head(client)
        for _ in range(2):
            args = [
                "--optimizer",
                thread.address,
                "--request-id",
                "cli-1",
                "alias",
                "cli",
                "champion",
                "1.0.0",
            ]
            assert main(args) == 0
        assert head(client) == before + 1
        code = main(
            ["--optimizer", thread.address, "--request-id", "cli-1", "alias", "cli", "champion", "1.1.0"]
        )
        assert code == 1 and "request_id" in capsys.readouterr().out
        assert head(client) == before + 1

    with socket.create_server(("127.0.0.1", 0)) as closed:
        address = f"127.0.0.1:{closed.getsockname()[1]}"
    code = main(["--optimizer", address, "alias", "cli", "champion", "1.0.0"])
    out = capsys.readouterr().out
    assert code == 1 and "UNAVAILABLE" in out
    assert "rerun with --request-id " in out


def test_the_retried_methods_are_exactly_those_with_a_request_id() -> None:
    from dspyops.client.channel import MUTATING
    from dspyops.proto import gateway_pb2 as gpb

    with_id = {
        (service.full_name, method.name)
        for module in (opb, gpb)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if "request_id" in method.input_type.fields_by_name
    }
    assert {(s, m) for s, methods in MUTATING.items() for m in methods} == with_id
    # the twelve of before, RegisterCorpus, SetCapturePolicy, SetDriftMonitor, SetEvaluator,
    # SetLearningPolicy and PauseLearning
    assert len(with_id) == 18
