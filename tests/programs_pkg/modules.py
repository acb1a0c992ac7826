"""User module classes, as a team would write them, for the program tests."""

from __future__ import annotations

from typing import Any

import dspy


class TwoStep(dspy.Module):
    """Analyze, then answer (the classic COPRO example): two predictors."""

    def __init__(self, hint: str = "", n: int = 1) -> None:
        super().__init__()
        self.hint = hint
        self.n = n
        self.analyze = dspy.ChainOfThought("text -> topic")
        self.answer = dspy.Predict("text, topic -> label")

    def forward(self, text: str) -> dspy.Prediction:
        topic = self.analyze(text=text).topic
        return dspy.Prediction(label=self.answer(text=text, topic=topic).label, topic=topic)


class Exploding(dspy.Module):
    def __init__(self, **kwargs: Any) -> None:
        raise RuntimeError("constructor failed on purpose")


def not_a_class() -> None:
    """Not a dspy.Module."""


class NotAModule:
    """A plain class: refused as a program."""


class ToolUser(dspy.Module):
    """A user module whose ReAct tools come from init_args ({"$tool": "package.module:function"})."""

    def __init__(self, tools: list[Any]) -> None:
        super().__init__()
        self.act = dspy.ReAct("question -> answer", tools=tools, max_iters=2)

    def forward(self, question: str) -> dspy.Prediction:
        return self.act(question=question)


class HelpDesk(dspy.Module):
    """Retrieval-augmented: the server's retriever arrives through init_args
    ({"search": {"$retriever": {"corpus": NAME, "k": K}}}), then one predictor answers."""

    def __init__(self, search: dspy.Module) -> None:
        super().__init__()
        self.search = search
        self.answer = dspy.Predict("text, passages: list[str] -> label")

    def forward(self, text: str) -> dspy.Prediction:
        passages = self.search(query=text).passages
        return dspy.Prediction(label=self.answer(text=text, passages=passages).label)


class AnalyzeThenAnswer(dspy.Module):
    """The classic two-stage program: a topic first, then the label from the text and topic."""

    def __init__(self) -> None:
        super().__init__()
        self.analyze = dspy.Predict("text -> topic")
        self.answer = dspy.Predict("text, topic -> label")

    def forward(self, text: str) -> dspy.Prediction:
        topic = self.analyze(text=text).topic
        return self.answer(text=text, topic=topic)
