"""What building a program needs from the server that builds it.

A frozen ``ProgramContext`` travels from a service's configuration to every place a program
is built (jobs, evaluation, imports, the gateway's loader): the modules whose classes and
tools specs may name (``--program-modules``), and how a Retrieve stage gets its retriever
(the server's corpora; ``dspyops.programs.retrieve``). The default context allows no user
code and has no corpora: user modules, ReAct tools and Retrieve stages are then refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

import dspy

from dspyops.errors import shown

MODULE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

# (corpus name, k) -> a Retrieve module over that corpus (dspyops.programs.retrieve's
# corpus_retriever); raises ProgramError("corpus", ...) for a corpus the server lacks
Retriever = Callable[[str, int], dspy.Module]
PinnedRetriever = Callable[[Mapping[str, str], Mapping[str, str] | None], Retriever]


@dataclass(frozen=True)
class ProgramContext:
    # modules (exact dotted names) a spec's "package.module:Class" and ReAct tools may come from
    program_modules: frozenset[str] = field(default_factory=frozenset)
    # (corpus, k) -> its retriever module (None: this server has no corpora); for a new
    # version, each corpus name means the digest it points to when the program is built
    retriever: Retriever | None = None
    # a registered version's retriever: from its Lineage.corpora (stage -> digest) and its
    # Retrieve stages (stage -> corpus name; None for a user module), never what a name means now
    pinned: PinnedRetriever | None = None

    def for_version(
        self, lineage_corpora: Mapping[str, str], stage_corpora: Mapping[str, str] | None
    ) -> ProgramContext:
        """The context a registered version is loaded with: its recorded corpora only."""
        if self.pinned is None:
            return self
        return replace(self, retriever=self.pinned(lineage_corpora, stage_corpora))

    def allowlist_text(self) -> str:
        return ", ".join(sorted(self.program_modules)) or "none"


NO_CONTEXT: Final = ProgramContext()


def parse_program_modules(values: Iterable[str]) -> frozenset[str]:
    """``--program-modules a.b,c`` (the flag may repeat) -> the module names. Raises
    ValueError naming a value that is not a dotted module name."""
    names: set[str] = set()
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if not MODULE_NAME.fullmatch(name):
                raise ValueError(f"{shown(name)} is not a module name such as mypkg.programs")
            names.add(name)
    return frozenset(names)


__all__ = [
    "MODULE_NAME",
    "NO_CONTEXT",
    "PinnedRetriever",
    "ProgramContext",
    "Retriever",
    "parse_program_modules",
]
