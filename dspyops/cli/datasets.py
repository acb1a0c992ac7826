"""What `--dataset` names: a JSONL or CSV file, a dataset shipped with dspyops, or
`feedback:DEPLOYMENT[@SINCE]`, a deployment's labelled feedback read from the gateway (every
page of ExportFeedback) and sent with the request as its examples."""

from __future__ import annotations

from typing import Any

from dspyops.cli.parsing import dataset_rows, parse_time
from dspyops.cli.session import Session
from dspyops.feedback import FeedbackPages, example_row, parse_feedback_ref

HELP = "JSONL/CSV file, a shipped dataset such as support_tickets, or feedback:DEPLOYMENT[@SINCE]"


def rows(session: Session, dataset: str) -> list[dict[str, Any]]:
    """The rows `dataset` names (see the module's docstring)."""
    ref = parse_feedback_ref(dataset)
    if ref is None:
        return dataset_rows(dataset)
    deployment, since = ref
    if not deployment:
        raise SystemExit(
            "--dataset: feedback: needs a deployment, e.g. feedback:web or feedback:web@2026-12-01"
        )
    with session.gateway() as gw:
        pages = FeedbackPages(
            gw, deployment, parse_time(since, "--dataset feedback:...@SINCE") if since else None
        )
        found = [example_row(example) for example in pages]
    if not found:
        raise SystemExit(
            f"--dataset: {deployment} has no labelled feedback"
            f"{' since ' + since if since else ''} ({pages.skipped} labelled without captured inputs)"
        )
    return found
