"""ReAct tools of the example: plain functions, allowlisted by module at server start."""

from __future__ import annotations

ORDERS = {"1001": "delivered", "1002": "in transit"}


def order_status(order_id: str) -> str:
    """The delivery status of an order."""
    return ORDERS.get(order_id.strip(), "unknown order")


def refund(order_id: str) -> str:
    """Refund an order (always refused in this example: its exception is what the agent sees)."""
    raise RuntimeError(f"refunds for {order_id} need a human")
