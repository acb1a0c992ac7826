"""ReAct tools for the program tests: one answers, one raises, one never answers in time."""

from __future__ import annotations

import time


def lookup_order(order_id: str) -> str:
    """Look up an order's status by its id."""
    return f"order {order_id} shipped yesterday"


def refund(order_id: str) -> str:
    """Refund an order."""
    raise RuntimeError(f"refunds are closed for {order_id}")


def slow(order_id: str) -> str:
    """Takes far longer than any tool timeout the tests set."""
    time.sleep(5)
    return "too late"


NOT_A_FUNCTION = "a string"


def flood(order_id: str) -> str:
    """Answers far more text than an observation keeps."""
    return "x" * 1_000_000
