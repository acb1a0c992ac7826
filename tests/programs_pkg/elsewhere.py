"""A module the tests never allowlist: importing it would set a flag they check."""

from __future__ import annotations

import os

os.environ["DSPYOPS_TEST_ELSEWHERE_IMPORTED"] = "1"


def tool(x: str) -> str:
    """Never reachable: this module is not allowlisted."""
    return x
