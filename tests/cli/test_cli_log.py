"""`dspyops log read|follow|verify|backup` (ReadLog, SubscribeLog, VerifyLog, and the offline
backup) against a real optimizer; `log` alone reads, `log -f` follows, as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import IO

from tests.support.cli_servers import Servers, cli, servers

__all__ = ["cli", "servers"]  # the fixtures


def test_read_by_its_grouped_name_and_by_default(cli: Servers) -> None:
    events = cli.json("log", "read", "--limit", "3")
    assert [int(e["position"]) for e in events] == [1, 2, 3]
    assert cli.json("log", "--limit", "3") == events
    assert [int(e["position"]) for e in cli.json("log", "read", "--from", "2", "--limit", "2")] == [3, 4]
    code, out = cli.run("log", "--stream", "program-p")
    assert code == 0 and "registered p 1.0.0" in out and "audit log" in out


def _lines(stream: IO[str], n: int) -> list[dict]:
    return [json.loads(stream.readline()) for _ in range(n)]


def test_follow_streams_matching_events_then_live_ones(cli: Servers) -> None:
    """`log follow` (and `log -f`) in a subprocess, as users run it; it ends when stopped."""
    base = [sys.executable, "-m", "dspyops.cli", *cli.addresses, "log"]
    followers = [
        subprocess.Popen(
            [*base, "follow", "--type", "RoutesSet", "--json"], stdout=subprocess.PIPE, text=True
        ),
        subprocess.Popen([*base, "-f", "--type", "RoutesSet", "--json"], stdout=subprocess.PIPE, text=True),
    ]
    try:
        with cli.opt() as opt:
            opt.create_deployment("followed", "p")  # DeploymentCreated and RoutesSet
            opt.set_routes("followed", {"1.1.0": 1.0}, reason="live")
            wanted = [e.position for e in opt.read_log(0, 1000, types=["RoutesSet"]).events]
        for follower in followers:
            assert follower.stdout is not None
            got = _lines(follower.stdout, len(wanted))
            assert [int(e["position"]) for e in got] == wanted
            assert {e["type"] for e in got} == {"dspyops.v1.RoutesSet"} and got[-1]["payload"]["routes_set"]
    finally:
        for follower in followers:
            follower.terminate()
            follower.wait(30)


def test_verify_through_the_optimizer_and_from_the_file(cli: Servers) -> None:
    (remote,) = cli.json("log", "verify")
    assert remote["ok"] and remote["checked"] > 0
    code, out = cli.run("log", "verify", "--log", cli.log)
    assert code == 0 and "hash chain intact" in out


def test_backup_of_the_live_log_verifies(cli: Servers) -> None:
    dest = cli.tmp / "backup" / "log.db"
    dest.parent.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "dspyops.cli", "log", "backup", str(dest), "--log", cli.log, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout.splitlines()[-1])
    assert verdict["ok"] and verdict["checked"] >= 1
    code, out = cli.run("log", "verify", "--log", str(dest))
    assert code == 0 and "hash chain intact" in out
