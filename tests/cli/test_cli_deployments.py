"""`dspyops deployments create|set-routes|get|list` (the optimizer's CreateDeployment,
SetRoutes, GetDeployment, ListDeployments) and `state|states|shadow|rollback` (the gateway's
GetDeploymentState, ListDeploymentStates, GetShadowResults, Rollback), against real servers;
`deploy`, `routes`, `state`, `shadow` and `rollback` are the same commands by their old names."""

from __future__ import annotations

import re

import pytest

from tests.support.cli_servers import Servers, cli, servers
from tests.support.harness import wait_until

__all__ = ["cli", "servers"]  # the fixtures


def test_create_route_and_read_a_deployment(cli: Servers) -> None:
    (created,) = cli.json("deployments", "create", "web", "p")
    assert created["program"] == "p" and [r["version"] for r in created["routes"]] == ["1.0.0"]
    code, out = cli.run("deploy", "api", "p")
    assert code == 0 and "deployment api serves p; routes: 1.0.0=1" in out

    (routed,) = cli.json(
        "deployments",
        "set-routes",
        "web",
        "1.0.0=0.5",
        "1.1.0=0.5",
        "--shadow",
        "1.2.0=1",
        "--reason",
        "split",
    )
    roles = {(r["version"], r.get("role")) for r in routed["routes"]}
    assert roles == {("1.0.0", "PRIMARY"), ("1.1.0", "PRIMARY"), ("1.2.0", "SHADOW")}
    stream_version = routed["stream_version"]

    (found,) = cli.json("deployments", "get", "web")
    assert found == routed
    code, out = cli.run("routes", "web")  # the old name, without routes: GetDeployment
    assert code == 0 and f"web (stream version {stream_version}): 1.0.0=0.5, 1.1.0=0.5, 1.2.0=1" in out
    listed = {d["deployment"]: d for d in cli.json("deployments", "list")}
    assert set(listed) == {"api", "web"} and listed["web"] == routed
    code, out = cli.run("deployments", "list")
    assert code == 0 and "api" in out and "1.0.0=0.5, 1.1.0=0.5" in out

    code, out = cli.run("routes", "api", "1.1.0=1", "--expected-version", "999")
    assert code == 1 and "ABORTED" in out
    with pytest.raises(
        SystemExit, match=re.escape("routes: 1.1.0: expected a number or a percent, got 'heavy'")
    ):
        cli.run("deployments", "set-routes", "api", "1.1.0=heavy")  # refused before any call
    code, out = cli.run("deployments", "get", "nowhere")
    assert code == 1 and "NOT_FOUND" in out


def test_the_gateway_side_state_shadow_and_rollback(cli: Servers) -> None:
    cli.gateway_caught_up()
    (state,) = cli.json("deployments", "state", "web")
    assert {r["version"] for r in state["routes"]} == {"1.0.0", "1.1.0", "1.2.0"}
    before = state["log_position"]
    code, out = cli.run("state", "web", "--as-of", "1")  # before the deployment existed
    assert code == 1 and "NOT_FOUND: deployment: no deployment named 'web' (log position 1)" in out
    states = {s["deployment"]: s for s in cli.json("deployments", "states")}
    assert set(states) == {"api", "web"}
    code, out = cli.run("deployments", "states")
    assert code == 0 and "deployments served by this gateway" in out

    with cli.gw() as gw:
        for i in range(10):
            gw.predict("web", {"text": "refund please"}, routing_key=f"u{i}")
        assert wait_until(lambda: sum(v.n for v in gw.get_shadow_results("web").versions) >= 10, 10)
    (shadow,) = cli.json("deployments", "shadow", "web")
    assert [v["version"] for v in shadow["versions"]] == ["1.2.0"]
    code, out = cli.run("shadow", "web")
    assert code == 0 and "shadow traffic of web" in out and "1.2.0" in out

    cli.run("routes", "web", "1.1.0=1")
    cli.gateway_caught_up()
    (rolled,) = cli.json("deployments", "rollback", "web", "--to", before, "--reason", "back")
    assert {r["version"] for r in rolled["routes"]} == {"1.0.0", "1.1.0", "1.2.0"}
    with pytest.raises(SystemExit, match="expected a log position or an ISO time"):
        cli.run("deployments", "rollback", "web", "--to", "not-a-time")
