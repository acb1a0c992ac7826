"""`dspyops mlflow sync` without MLflow installed, and with a store MLflow cannot open: a
one-line message naming what to do or the argument, no traceback."""

from __future__ import annotations

import sys

import pytest

from dspyops.cli.main import main


def test_without_mlflow_it_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")] + ["mlflow"]:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: `import` raises ImportError
    with pytest.raises(SystemExit) as exc:
        main(["mlflow", "sync", "--tracking-uri", "sqlite:///unused.db"])
    assert str(exc.value) == "mlflow sync: MLflow is not installed: pip install 'dspyops[mlflow]'"


def test_a_store_mlflow_cannot_open_is_one_line_naming_the_argument() -> None:
    pytest.importorskip("mlflow")
    with pytest.raises(SystemExit) as exc:
        main(["mlflow", "sync", "--tracking-uri", "nosuchscheme://x"])
    message = str(exc.value)
    assert message.startswith("mlflow sync: --tracking-uri nosuchscheme://x: ")
    assert "\n" not in message and "Traceback" not in message
