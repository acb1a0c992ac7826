"""The CLI's command tree, generated from the click group (`python scripts/readme_cli.py`).

Prints it as Markdown; with `--write` it replaces what README.md holds between the
`<!-- cli-tree:start -->` markers, so the README's command list cannot go stale
(tests/cli/test_cli_tree.py compares the two once the markers are there).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from dspyops.cli.command import RpcCommand
from dspyops.cli.main import cli
from dspyops.cli.shortcuts import SHORTCUTS

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- cli-tree:start -->", "<!-- cli-tree:end -->"


def _usage(command: click.Command, path: str) -> str:
    ctx = click.Context(command, info_name=path)
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    pieces = [arg.make_metavar(ctx) for arg in arguments]
    return " ".join([path, *pieces])


def _line(command: click.Command, path: str) -> str:
    text = command.get_short_help_str(limit=1000)
    calls = ""
    if isinstance(command, RpcCommand) and command.rpcs:
        service = sorted({name.partition(".")[0] for name in command.rpcs})
        calls = f" ({' or '.join(service)})"
    return f"- `{_usage(command, path)}`{calls}: {text}"


def tree() -> str:
    """The commands by area, each with its RPC, then the shortcuts."""
    lines = [
        "`dspyops [--optimizer ADDR] [--gateway ADDR] [--token T] [--tls-ca CA] [--tls-cert CRT] "
        "[--tls-key KEY] [--request-id ID] COMMAND ...`; every command that prints a reply takes "
        "`--json`, and `COMMAND --help` lists its options.",
        "",
    ]
    ctx = click.Context(cli, info_name="dspyops")
    for name in cli.list_commands(ctx):
        if name in SHORTCUTS:
            continue
        command = cli.commands[name]
        if isinstance(command, click.Group):
            default = getattr(command, "default_cmd_name", None)
            lines.append(f"- `dspyops {name}`: {command.get_short_help_str(limit=1000)}")
            for sub in command.list_commands(ctx):
                mark = " (the default)" if sub == default else ""
                lines.append("  " + _line(command.commands[sub], f"dspyops {name} {sub}") + mark)
        else:
            lines.append(_line(command, f"dspyops {name}"))
    lines += ["", "Shortcuts, the same commands under the names they had before they were grouped:", ""]
    lines.append(", ".join(f"`{name}` = `{target}`" for name, (target, _) in sorted(SHORTCUTS.items())) + ".")
    return "\n".join(lines) + "\n"


def block() -> str:
    return f"{START}\n{tree()}{END}"


def main(argv: list[str]) -> int:
    if "--write" not in argv:
        sys.stdout.write(tree())
        return 0
    text = README.read_text()
    if START not in text or END not in text:
        sys.stderr.write(f"README.md lacks the markers {START} ... {END}\n")
        return 1
    README.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block(), text, flags=re.S))
    print("README.md: CLI command tree replaced")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
