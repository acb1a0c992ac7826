"""A job's LM usage in words: the calls paid for, and those its LM cache replayed."""

from __future__ import annotations

from dspyops.proto import events_pb2 as pb


def lm_calls(usage: pb.Usage) -> str:
    """``"42 LM calls"``, and ``" (+17 replayed)"`` when the job's LM cache answered some
    (a retried job replays what its earlier attempt paid for; those cost nothing)."""
    text = f"{usage.lm_calls} LM calls"
    if usage.replayed_lm_calls:
        text += f" (+{usage.replayed_lm_calls} replayed)"
    return text


__all__ = ["lm_calls"]
