"""`dspyops optimizers`: each parameter's type, default and range; presets' integers as
integers (a Struct holds every number as a double)."""

from __future__ import annotations

import re

from tests.support.cli_servers import Servers, cli, servers

__all__ = ["cli", "servers"]  # the fixtures


def test_optimizers_table_shows_type_default_and_range(cli: Servers) -> None:
    code, out = cli.run("optimizers")
    assert code == 0, out
    assert re.search(r"num_threads: int = \d+, an integer in", out), out
    assert "max_bootstrapped_demos: int = 4" in out, out
    # no preset param printed as a whole number with a trailing .0
    presets = out[out.index("presets") :]
    assert not re.search(r": \d+\.0[,}]", presets), presets
    assert re.search(r'"\w+": \d+[,}]', presets), presets
