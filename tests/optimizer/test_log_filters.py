"""ReadLog and SubscribeLog filter on the server (event types, actor, recorded time), through
a real optimizer with two authenticated callers: each filtered answer is exactly the full
log filtered by the same rule here; a filtered page says how far it scanned; bad filters
are INVALID_ARGUMENT naming the field; `dspyops log` sends its filters instead of
filtering what one page brought back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dspy
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops import logwire
from dspyops.auth import hash_token
from dspyops.cli.main import main
from dspyops.client import OptimizerClient
from dspyops.errors import SHOWN_CHARS
from dspyops.proto import events_pb2 as pb
from dspyops.rpc import Security
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread

TOKENS = {"alice": "alice-token-1", "bob": "bob-token-2"}
SIG = "text -> label"


@dataclass
class Log:
    address: str
    events: list[pb.Event]  # the whole log, unfiltered
    middle: datetime  # between alice's first changes and bob's

    def client(self, who: str = "alice") -> OptimizerClient:
        return OptimizerClient(self.address, timeout=30, token=TOKENS[who])

    def where(self, keep: Callable[[pb.Event], bool]) -> list[int]:
        return [e.position for e in self.events if keep(e)]


def _state(tmp: Path, demos: int) -> bytes:
    program = dspy.Predict(SIG)
    program.demos = [dspy.Example(text=f"ticket {i}", label="refund") for i in range(demos)]
    path = tmp / f"state-{demos}.json"
    program.save(str(path))
    return path.read_bytes()


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Log]:
    tmp = tmp_path_factory.mktemp("log-filters")
    tokens = tmp / "tokens"
    tokens.write_text("".join(f"{hash_token(token)} admin {name}\n" for name, token in TOKENS.items()))
    server = ServerThread(
        lambda: start_optimizer(
            OptimizerConfig(
                log=str(tmp / "log.db"), data_dir=tmp / "data", security=Security(tokens_file=str(tokens))
            )
        )
    )
    with OptimizerClient(server.address, timeout=30, token=TOKENS["alice"]) as alice:
        alice.import_program("p", SIG, _state(tmp, 1))
        alice.import_program("p", SIG, _state(tmp, 2))
        alice.create_deployment("web", "p")
        time.sleep(0.02)
        middle = datetime.now(UTC)
        time.sleep(0.02)
        with OptimizerClient(server.address, timeout=30, token=TOKENS["bob"]) as bob:
            bob.set_alias("p", "champion", "1.1.0")
            bob.set_routes("web", {"1.0.0": 0.5, "1.1.0": 0.5}, reason="half and half")
            bob.set_version_status("p", "1.1.0", "staging")
        alice.set_routes("web", {"1.1.0": 1.0})
        events = list(alice.read_log(0, 1000).events)
    yield Log(server.address, events, middle)
    server.stop()


def _short(event: pb.Event) -> str:
    return event.type.rsplit(".", 1)[-1]


def test_the_fixture_log_has_what_the_filters_tell_apart(log: Log) -> None:
    assert {e.actor for e in log.events} == {"alice", "bob"}
    assert {"RoutesSet", "AliasSet", "VersionRegistered"} <= {_short(e) for e in log.events}
    assert log.where(lambda e: e.recorded_at.ToDatetime(tzinfo=UTC) < log.middle)
    assert log.where(lambda e: e.recorded_at.ToDatetime(tzinfo=UTC) > log.middle)


def test_read_log_filters_on_the_server(log: Log) -> None:
    def at(e: pb.Event) -> datetime:
        return e.recorded_at.ToDatetime(tzinfo=UTC)

    cases: list[tuple[dict[str, object], Callable[[pb.Event], bool]]] = [
        ({"types": ["RoutesSet"]}, lambda e: _short(e) == "RoutesSet"),
        ({"types": ["dspyops.v1.AliasSet", "RoutesSet"]}, lambda e: _short(e) in ("AliasSet", "RoutesSet")),
        ({"actor": "bob"}, lambda e: e.actor == "bob"),
        ({"since": log.middle}, lambda e: at(e) >= log.middle),
        ({"until": log.middle}, lambda e: at(e) <= log.middle),
        (
            {"types": ["RoutesSet"], "actor": "alice", "stream_prefix": "deployment-"},
            lambda e: _short(e) == "RoutesSet" and e.actor == "alice" and e.stream.startswith("deployment-"),
        ),
    ]
    with log.client() as opt:
        for filters, keep in cases:
            page = opt.read_log(0, 1000, **filters)  # type: ignore[arg-type]
            assert [e.position for e in page.events] == log.where(keep), filters
            assert page.events, filters  # every case selects something
            assert page.scanned_to == page.head == log.events[-1].position


def test_a_filtered_page_stops_at_limit_matches_and_reads_on_from_scanned_to(log: Log) -> None:
    wanted = log.where(lambda e: e.actor == "bob")
    with log.client() as opt:
        first = opt.read_log(0, 1, actor="bob")
        assert [e.position for e in first.events] == wanted[:1]
        assert first.scanned_to == wanted[0]  # the match itself: nothing after it was looked at
        rest = opt.read_log(first.scanned_to, 1000, actor="bob")
        assert [e.position for e in rest.events] == wanted[1:]


def test_a_filtered_read_scans_a_bounded_stretch_and_says_where_it_stopped(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server looks at SCAN_EVENTS events per call whatever the filter (here 2): a rare
    type comes back after a few calls, each one's scanned_to the next one's after."""
    monkeypatch.setattr(logwire, "SCAN_EVENTS", 2)  # the server runs in this process
    wanted = log.where(lambda e: _short(e) == "AliasSet")
    found, after, calls = [], 0, 0
    with log.client() as opt:
        while True:
            page = opt.read_log(after, 100, types=["AliasSet"])
            calls += 1
            assert page.scanned_to - after <= 2 or page.events  # at most two looked at per call
            found += [e.position for e in page.events]
            if page.scanned_to == after or page.scanned_to >= page.head:
                break
            after = page.scanned_to
    assert found == wanted
    assert calls > 1


def test_subscribe_log_filters_on_the_server(log: Log) -> None:
    wanted = log.where(lambda e: _short(e) == "RoutesSet" and e.actor == "bob")
    with log.client() as opt:
        stream = opt.subscribe_log(0, types=["RoutesSet"], actor="bob", timeout=10)
        got = [next(stream).position for _ in wanted]
        stream.cancel()  # type: ignore[attr-defined]
    assert got == wanted
    since = log.where(lambda e: e.recorded_at.ToDatetime(tzinfo=UTC) >= log.middle)
    with log.client() as opt:
        stream = opt.subscribe_log(0, since=log.middle, timeout=10)
        assert [next(stream).position for _ in since] == since
        stream.cancel()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "filters, field",
    [
        ({"types": ["RoutesSet", "NoSuchEvent"]}, "types"),
        ({"types": ["dspyops.v1.Nope"]}, "types"),
        ({"since": datetime(2026, 1, 2, tzinfo=UTC), "until": datetime(2026, 1, 1, tzinfo=UTC)}, "since"),
        ({"since": Timestamp(seconds=10**12)}, "since"),
    ],
)
def test_bad_filters_are_invalid_argument_naming_the_field(log: Log, filters: dict, field: str) -> None:
    with log.client() as opt:
        for call in (
            lambda: opt.read_log(0, 10, **filters),
            lambda: next(iter(opt.subscribe_log(0, timeout=10, **filters))),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                call()
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert str(caught.value.details()).startswith(f"{field}: ")


def test_an_unknown_type_echoes_a_short_prefix_only(log: Log) -> None:
    with log.client() as opt, pytest.raises(grpc.RpcError) as caught:
        opt.read_log(0, 10, types=["X" * 900])  # longer ones: refused by the request limits
    details = str(caught.value.details())
    # the bad value comes back as a short prefix with its length; the rest of the message
    # lists the known types (no type name has an X), which grows with the contract
    assert details.count("X") <= SHOWN_CHARS and "(900 characters)" in details


def test_the_cli_sends_its_filters_to_the_server(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    """`--limit 1` with a filter gives the first match, wherever it is (a client-side filter
    over the first page gave nothing when the log did not start with a match)."""
    first_routes = log.where(lambda e: _short(e) == "RoutesSet")[0]
    assert first_routes > 1
    args = ["--optimizer", log.address, "--token", TOKENS["alice"], "log"]
    assert main([*args, "--type", "RoutesSet", "--limit", "1", "--json"]) == 0
    assert [json.loads(line)["position"] for line in capsys.readouterr().out.splitlines()] == [first_routes]

    since = (log.middle - timedelta(microseconds=1)).isoformat()
    assert main([*args, "--actor", "bob", "--since", since, "--type", "AliasSet", "--type", "RoutesSet"]) == 0
    out = capsys.readouterr().out
    assert "@champion -> 1.1.0" in out and "routes of web: 1.0.0:0.5, 1.1.0:0.5" in out
    assert "registered" not in out and "staging" not in out

    assert main([*args, "read", "--until", log.middle.isoformat(), "--json"]) == 0
    until = [int(json.loads(line)["position"]) for line in capsys.readouterr().out.splitlines()]
    assert until == log.where(lambda e: e.recorded_at.ToDatetime(tzinfo=UTC) <= log.middle)

    assert main([*args, "--type", "Nope"]) == 1
    assert "INVALID_ARGUMENT" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--since: expected an ISO time"):
        main([*args, "--since", "yesterday"])
