"""Calling a module on DSPy's async path, whatever it implements.

DSPy's own modules (Predict, ChainOfThought, ReAct) have ``aforward``; a user's class often
has only ``forward``, and ``dspy.Module.acall`` then fails. Such a module runs in a worker
thread (``asyncio.to_thread`` copies the context, so DSPy's settings hold there too) and the
event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dspy


def has_aforward(module: dspy.Module) -> bool:
    return callable(getattr(type(module), "aforward", None))


async def acall(module: dspy.Module, inputs: dict[str, Any]) -> Any:
    if has_aforward(module):
        return await module.acall(**inputs)
    return await asyncio.to_thread(lambda: module(**inputs))


__all__ = ["acall", "has_aforward"]
