"""scripts/readme_cli.py: the command tree the README shows is generated from the click
group, so it names every command, its RPC and every shortcut."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from dspyops.cli.shortcuts import SHORTCUTS
from tests.cli.test_cli_rpc_coverage import COMMANDS

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "readme_cli.py"


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_cli", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tree_names_every_command_its_rpc_and_every_shortcut() -> None:
    tree = script().tree()
    for path, command in COMMANDS.items():
        line = next((x for x in tree.splitlines() if x.lstrip().startswith(f"- `dspyops {path}")), None)
        assert line is not None, path
        for name in getattr(command, "rpcs", ()):
            # its RPCs lead the help, "A: ..." or, for a client-side tool that calls several, "A / B: ..."
            assert re.search(rf"\b{name.partition('.')[2]}( / \w+)*: ", line), (path, name)
    for name, (target, _) in SHORTCUTS.items():
        assert f"`{name}` = `{target}`" in tree


def test_the_readme_block_is_the_generated_tree() -> None:
    module = script()
    text = module.README.read_text()
    if module.START not in text:
        pytest.skip("README.md has no cli-tree markers yet (the lead adds them with the CLI section)")
    found = re.search(re.escape(module.START) + ".*?" + re.escape(module.END), text, flags=re.S)
    assert found is not None and found.group(0) == module.block(), "run: python scripts/readme_cli.py --write"
