"""Which predictors of a multi-module program a candidate changed, for ``TrialCompleted.predictors``.

A candidate an optimizer scores is a whole program; the predictors it "concerns" are those
whose instruction or demos differ from the job's student (COPRO refines one at a time,
MIPROv2 and GEPA choose an instruction for each, bootstrapping fills each one's demos). A
wrapper is named by its inner predictors: a k-NN program gives every predictor per-input
demos, an ensemble concerns what any of its members changed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dspy

from dspyops.programs.wrappers import EnsembleProgram, KNNProgram

Fingerprints = dict[str, str]


def fingerprints(program: dspy.Module) -> Fingerprints:
    """Each named predictor's instruction and demos, hashed (compared, never shown)."""
    prints = {}
    for name, predictor in program.named_predictors():
        demos = [dict(d) if hasattr(d, "items") else str(d) for d in predictor.demos]
        body = json.dumps([predictor.signature.instructions, demos], sort_keys=True, default=str)
        prints[name] = hashlib.sha256(body.encode()).hexdigest()
    return prints


def changed_predictors(candidate: Any, student: Fingerprints) -> tuple[str, ...]:
    """The predictors of ``candidate`` that differ from the student's, in program order."""
    if isinstance(candidate, KNNProgram):
        return tuple(name for name, _ in candidate.program.named_predictors())
    if isinstance(candidate, EnsembleProgram):
        changed: dict[str, None] = {}
        for member in candidate.programs:
            changed.update(dict.fromkeys(changed_predictors(member, student)))
        return tuple(changed)
    if not isinstance(candidate, dspy.Module):
        return ()
    return tuple(name for name, value in fingerprints(candidate).items() if student.get(name) != value)


def instruction_changes(candidate: dict[str, Any], student: dict[str, str]) -> tuple[str, ...]:
    """GEPA's candidates are {predictor name: instruction}: the names whose text is not the student's."""
    return tuple(name for name, text in candidate.items() if student.get(name) != str(text))
