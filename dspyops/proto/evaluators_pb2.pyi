from dspyops.proto import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Evaluator(_message.Message):
    __slots__ = ("name", "share", "metric", "judge_program", "judge_version", "max_calls_per_hour", "max_cost_per_hour", "enabled")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    JUDGE_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    JUDGE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_CALLS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    name: str
    share: float
    metric: str
    judge_program: str
    judge_version: str
    max_calls_per_hour: int
    max_cost_per_hour: float
    enabled: bool
    def __init__(self, name: _Optional[str] = ..., share: _Optional[float] = ..., metric: _Optional[str] = ..., judge_program: _Optional[str] = ..., judge_version: _Optional[str] = ..., max_calls_per_hour: _Optional[int] = ..., max_cost_per_hour: _Optional[float] = ..., enabled: _Optional[bool] = ...) -> None: ...

class EvaluatorSet(_message.Message):
    __slots__ = ("deployment", "evaluator", "reason", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    EVALUATOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    evaluator: Evaluator
    reason: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., evaluator: _Optional[_Union[Evaluator, _Mapping]] = ..., reason: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class EvaluatorSample(_message.Message):
    __slots__ = ("name", "source", "share", "point", "sampled", "scored", "score")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    POINT_FIELD_NUMBER: _ClassVar[int]
    SAMPLED_FIELD_NUMBER: _ClassVar[int]
    SCORED_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: str
    share: float
    point: float
    sampled: bool
    scored: bool
    score: float
    def __init__(self, name: _Optional[str] = ..., source: _Optional[str] = ..., share: _Optional[float] = ..., point: _Optional[float] = ..., sampled: _Optional[bool] = ..., scored: _Optional[bool] = ..., score: _Optional[float] = ...) -> None: ...
