"""A team's own DSPy program: analyze the ticket, then answer with the topic beside it."""

from __future__ import annotations

import dspy


class TwoStep(dspy.Module):
    """Two predictors, optimized and saved together: ``analyze`` and ``answer``."""

    def __init__(self, hint: str = "") -> None:
        super().__init__()
        self.hint = hint
        self.analyze = dspy.ChainOfThought("text -> topic")
        self.answer = dspy.Predict("text, topic -> label")

    def forward(self, text: str) -> dspy.Prediction:
        topic = self.analyze(text=text).topic
        return dspy.Prediction(label=self.answer(text=text, topic=topic).label)
