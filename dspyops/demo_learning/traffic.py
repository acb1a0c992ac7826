"""The demo's traffic generator: tickets from a seeded stream, sent through a gateway, each
answered by a simulated user who knows the right label and reports it (`RecordOutcome` with
the score and `expected`).

Before the drift every ticket is one of the five kinds the serving program was optimized on
(rows of dspyops/data/support_tickets.jsonl). The drift is a change of the label distribution:
the shop starts a loyalty programme and sells products under warranty, and a share of the
tickets becomes of those two new kinds (`NEW_KINDS`, composed from templates and fillers, so
no two are alike), labels the serving version has never seen and cannot produce.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

import grpc

from dspyops.client import GatewayClient
from dspyops.datasets import example_row, load_dataset

WORKERS = 8  # users sending at once

# label -> (templates, fillers for {item})
NEW_KINDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "loyalty": (
        (
            "My loyalty points from the {item} order never showed up in my rewards balance.",
            "How many rewards points do I need to reach the gold loyalty tier?",
            "The loyalty programme says my points expire, but I earned them buying a {item} last week.",
            "I redeemed 500 reward points for a {item} voucher and the points vanished.",
            "Can I transfer my loyalty points to my partner's rewards membership?",
            "Why did my rewards tier drop from silver to bronze after the {item} purchase?",
            "Do I earn double loyalty points on a {item} during the members' weekend?",
            "My rewards membership card is not linked to my loyalty points any more.",
        ),
        ("blender", "kettle", "coffee machine", "toaster", "vacuum cleaner", "desk lamp", "rice cooker"),
    ),
    "warranty": (
        (
            "My {item} stopped working after four months: is the repair covered by the warranty?",
            "Where do I find the serial number of my {item} for the warranty claim?",
            "The technician says the {item} warranty expired, but I bought the extended warranty.",
            "How long is the manufacturer's warranty on the {item}?",
            "Does the two-year warranty cover a cracked {item} housing, or only the motor?",
            "I sent my {item} in for a warranty repair a month ago and have heard nothing.",
            "Can the warranty repair of my {item} be done by a local technician?",
            "The warranty claim for my {item} was rejected without a reason.",
        ),
        ("blender", "kettle", "coffee machine", "toaster", "vacuum cleaner", "desk lamp", "rice cooker"),
    ),
}


OPENINGS: Final = ("", "Hi,", "Hello,", "Good morning.", "Quick question:", "Urgent:")
CLOSINGS: Final = ("", "Thanks.", "Please help.", "Thank you in advance.", "Any update?")


@dataclass
class Sent:
    """What one batch of traffic did, per version that served (errors: failed predictions)."""

    served: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)

    def add(self, other: Sent) -> None:
        for mine, theirs in (
            (self.served, other.served),
            (self.correct, other.correct),
            (self.errors, other.errors),
            (self.labels, other.labels),
        ):
            mine.update(theirs)

    def line(self) -> str:
        parts = []
        for version in sorted(self.served):
            n = self.served[version]
            parts.append(f"{version}: {n} served, {self.correct[version] / n:.0%} right")
        failed = sum(self.errors.values())
        if failed:
            parts.append(f"{failed} failed")
        return "; ".join(parts)


class TicketStream:
    """Deterministic for a seed: the same tickets, labels and users in the same order."""

    def __init__(self, seed: int = 15) -> None:
        self.random = random.Random(seed)
        self.known = [example_row(example) for example in load_dataset("support_tickets")]
        self.user = 0

    def new_kind(self) -> dict[str, str]:
        label = self.random.choice(sorted(NEW_KINDS))
        templates, items = NEW_KINDS[label]
        text = self.random.choice(templates).format(item=self.random.choice(items))
        # an opening, a closing and an order number: no two tickets alike, so the retrain's
        # held-out feedback is mostly tickets it has not seen word for word
        opening, closing = self.random.choice(OPENINGS), self.random.choice(CLOSINGS)
        order = f"Order {self.random.randrange(10_000, 99_999)}."
        return {"text": " ".join(part for part in (opening, text, closing, order) if part), "label": label}

    def ticket(self, new_share: float) -> dict[str, str]:
        """A ticket: of a new kind with probability `new_share`, else a known one."""
        if self.random.random() < new_share:
            return self.new_kind()
        return dict(self.random.choice(self.known))

    def send(
        self, gateways: Sequence[GatewayClient], deployment: str, n: int, new_share: float = 0.0
    ) -> Sent:
        """n predictions, a user each, spread over the gateways and sent by WORKERS users at
        a time (one slow answer does not stop the others); every answered one gets its outcome
        and the right label. The tickets and users are drawn first, so they stay deterministic."""
        batch = []
        for _ in range(n):
            self.user += 1
            batch.append((self.user, self.ticket(new_share)))
        sent = Sent()
        with ThreadPoolExecutor(WORKERS) as pool:
            for one in pool.map(lambda job: _one(gateways[job[0] % len(gateways)], deployment, *job), batch):
                sent.add(one)
        return sent


def _one(gateway: GatewayClient, deployment: str, user: int, row: dict[str, str]) -> Sent:
    sent = Sent()
    sent.labels[row["label"]] += 1
    try:
        answer = gateway.predict(deployment, {"text": row["text"]}, routing_key=f"user-{user}")
    except grpc.RpcError as err:  # recorded by the gateway as a failed prediction
        if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        sent.errors["failed"] += 1
        return sent
    right = answer.outputs.get("label", "").strip().lower() == row["label"]
    sent.served[answer.version] += 1
    sent.correct[answer.version] += right
    gateway.record_outcome(answer.prediction_id, float(right), expected={"label": row["label"]})
    return sent
