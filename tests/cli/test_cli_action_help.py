"""Each action of `experiment` and `canary` has its own help (a click subcommand each), not
one shared page with a choice argument."""

from __future__ import annotations

import pytest

from dspyops.cli.main import cli as root
from dspyops.cli.main import main

GROUPS = ["experiments", "canary"]


@pytest.mark.parametrize("group", GROUPS)
def test_every_action_has_its_own_help(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    actions = sorted(root.commands[group].commands)  # type: ignore[attr-defined]
    assert len(actions) >= 2, actions
    pages = set()
    for action in actions:
        code: int | str | None
        try:
            code = main([group, action, "--help"])
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr().out
        assert code in (0, None) and f"Usage: dspyops {group} {action}" in out, out
        pages.add(out.split("\n\n")[1].strip())  # the docstring paragraph
    assert len(pages) == len(actions)  # a description of its own for each
