"""The one console everything prints through, and `--json` output (one object per line)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console

# Piped output (CI logs, tests, `| less`) gets a wide fixed width instead of rich's 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)


def as_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def print_json(message: Message) -> None:
    print(json.dumps(as_dict(message), sort_keys=True), flush=True)


def print_json_object(value: dict[str, Any]) -> None:
    print(json.dumps(value, sort_keys=True), flush=True)
