"""DSPy's ChatAdapter with the constant part of a version's prompts formatted once.

A served version's system message (fields, structure, instructions) and its demos are the
same on every call, but DSPy's ``Predict`` builds a fresh ``ChatAdapter`` per call and
formats both anew: ``format_field_value`` builds a pydantic ``TypeAdapter`` per demo field,
about a third of an in-process call on the offline LM (bench/bench_latency.py). This
adapter keeps what DSPy formatted the first time and hands it back while the inputs are
the same objects; everything else (the current input, parsing, the JSON fallback, tools,
native features) is DSPy's own code, so the prompt is byte for byte DSPy's
(tests/gateway/test_prompt_cache.py compares every module kind).

What is cached, and why it cannot go stale:

* only signatures of the version's own predictors, known when it is loaded; a signature
  built per call (a native feature rewriting it, a user module swapping it) is formatted by
  DSPy as usual, so the cache holds one entry per predictor and never grows;
* a signature class is immutable (``with_instructions`` and friends return a new class);
* demos by identity: the entry keeps the demo objects themselves (so no id is reused) and
  is used only when the call's demos are those same objects in the same order. A module
  that sets new demos per call (KNN-style) misses and is formatted afresh; one that edits
  a demo ``Example`` in place would be served its old formatting, which no DSPy module does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import dspy
from dspy.signatures.signature import Signature

_Messages = list[dict[str, Any]]


class FormatOnce(dspy.ChatAdapter):
    def __init__(self, signatures: Iterable[type[Signature]]) -> None:
        super().__init__()
        # by id, holding the class: identity is the key, and no Signature __eq__ runs per call
        self._known: dict[int, type[Signature]] = {id(s): s for s in signatures}
        self._system: dict[int, str] = {}
        self._demos: dict[int, tuple[tuple[Any, ...], _Messages]] = {}
        self.hits = 0  # calls answered from the cache (tests: the cache is in use at all)

    def _is_known(self, signature: type[Signature]) -> bool:
        return self._known.get(id(signature)) is signature

    def format_system_message(self, signature: type[Signature]) -> str:
        if not self._is_known(signature):
            return super().format_system_message(signature)
        text = self._system.get(id(signature))
        if text is None:  # two first calls may both format: the same text, either kept
            text = self._system[id(signature)] = super().format_system_message(signature)
        else:
            self.hits += 1
        return text

    def format_demos(self, signature: type[Signature], demos: list[dict[str, Any]]) -> _Messages:
        if not self._is_known(signature):
            return super().format_demos(signature, demos)
        cached = self._demos.get(id(signature))
        if cached is not None and _same_objects(cached[0], demos):
            self.hits += 1
            return [dict(m) for m in cached[1]]  # copies: the caller may change its messages
        messages = super().format_demos(signature, demos)
        self._demos[id(signature)] = (tuple(demos), [dict(m) for m in messages])
        return messages


# ChatAdapter's format and parse already carry DSPy's callback wrapper; a subclass would wrap
# them again (Adapter.__init_subclass__) and every callback would hear each call twice
FormatOnce.format = dspy.ChatAdapter.format
FormatOnce.parse = dspy.ChatAdapter.parse


def _same_objects(kept: tuple[Any, ...], demos: Sequence[Any]) -> bool:
    return len(kept) == len(demos) and all(a is b for a, b in zip(kept, demos, strict=True))


def format_once(module: dspy.Module) -> FormatOnce:
    """The adapter for one loaded program: its predictors' signatures as they are now."""
    return FormatOnce(predictor.signature for _, predictor in module.named_predictors())


__all__ = ["FormatOnce", "format_once"]
