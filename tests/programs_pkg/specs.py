"""The program specs the program tests share: the allowlisted test modules, a two-stage
pipeline ("analyze, then answer") and a ReAct stage with two tools, one of which raises."""

from __future__ import annotations

from dspyops.proto import events_pb2 as pb

MODULES = "tests.programs_pkg.modules"
TOOLS = "tests.programs_pkg.tools"
ALLOWED = frozenset({MODULES, TOOLS})

PIPELINE = pb.ProgramSpec(
    module="Pipeline",
    pipeline=pb.Pipeline(
        stages=[
            pb.Stage(
                name="analyze",
                kind="ChainOfThought",
                signature="text -> topic",
                inputs={"text": "input.text"},
            ),
            pb.Stage(
                name="answer",
                kind="Predict",
                signature="text, topic -> label",
                inputs={"text": "input.text", "topic": "analyze.topic"},
            ),
        ],
        outputs={"label": "answer.label"},
    ),
)


def agent(max_iters: int = 3, tool_timeout_seconds: float = 0.0) -> pb.ProgramSpec:
    """One ReAct stage with lookup_order and refund (which raises)."""
    stage = pb.Stage(
        name="agent",
        kind="ReAct",
        signature="text -> label",
        inputs={"text": "input.text"},
        tools=[f"{TOOLS}:lookup_order", f"{TOOLS}:refund"],
        max_iters=max_iters,
        tool_timeout_seconds=tool_timeout_seconds,
    )
    return pb.ProgramSpec(
        module="Pipeline", pipeline=pb.Pipeline(stages=[stage], outputs={"label": "agent.label"})
    )
