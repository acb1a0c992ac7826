"""`dspyops jobs watch` on a job the server does not know: NOT_FOUND, and no progress bar
drawn before it."""

from __future__ import annotations

import pytest

from dspyops.cli.main import main
from tests.support.cli_servers import Servers, cli, servers

__all__ = ["cli", "servers"]  # the fixtures


def test_watch_of_an_unknown_job_says_not_found_without_a_progress_bar(
    cli: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main([*cli.addresses, "jobs", "watch", "no-such-job"])
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert code != 0
    assert "NOT_FOUND" in printed or "not found" in printed.lower(), printed
    assert "━" not in printed and "%" not in printed, printed  # rich's bar and its percentage
