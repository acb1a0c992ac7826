"""`python -m gateway_svc` learning flags: the token and the CA go only with an optimizer to
use them on, and the optimizer only with a log to append the loop's decisions to."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway_svc.__main__ import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--log", "x.db", "--learning-token-file", "t"],
            "--learning-token-file only with --learning-optimizer",
        ),
        (
            ["--log", "x.db", "--learning-tls-ca", "ca.crt"],
            "--learning-tls-ca only with --learning-optimizer",
        ),
        (
            [
                "--from-optimizer",
                "127.0.0.1:1",
                "--predictions",
                "p.db",
                "--learning-optimizer",
                "127.0.0.1:2",
            ],
            "--learning-optimizer needs --log",
        ),
    ],
)
def test_learning_flags_that_cannot_mean_anything_are_usage_errors(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "x.db").exists()  # refused before anything was opened
