from dspyops.proto import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LearningCanary(_message.Message):
    __slots__ = ("steps", "step_seconds", "max_error_rate", "max_latency_p95_ms", "max_cost_per_prediction", "min_samples_per_step")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_PER_PREDICTION_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_PER_STEP_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedScalarFieldContainer[float]
    step_seconds: int
    max_error_rate: float
    max_latency_p95_ms: float
    max_cost_per_prediction: float
    min_samples_per_step: int
    def __init__(self, steps: _Optional[_Iterable[float]] = ..., step_seconds: _Optional[int] = ..., max_error_rate: _Optional[float] = ..., max_latency_p95_ms: _Optional[float] = ..., max_cost_per_prediction: _Optional[float] = ..., min_samples_per_step: _Optional[int] = ...) -> None: ...

class LearningPolicy(_message.Message):
    __slots__ = ("optimizer", "preset", "params", "min_new_examples", "on_drift", "holdout_fraction", "min_improvement", "canary", "min_interval_seconds", "budget")
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    MIN_NEW_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    ON_DRIFT_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_FRACTION_FIELD_NUMBER: _ClassVar[int]
    MIN_IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    MIN_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    optimizer: str
    preset: str
    params: _struct_pb2.Struct
    min_new_examples: int
    on_drift: bool
    holdout_fraction: float
    min_improvement: float
    canary: LearningCanary
    min_interval_seconds: int
    budget: _common_pb2.Budget
    def __init__(self, optimizer: _Optional[str] = ..., preset: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., min_new_examples: _Optional[int] = ..., on_drift: _Optional[bool] = ..., holdout_fraction: _Optional[float] = ..., min_improvement: _Optional[float] = ..., canary: _Optional[_Union[LearningCanary, _Mapping]] = ..., min_interval_seconds: _Optional[int] = ..., budget: _Optional[_Union[_common_pb2.Budget, _Mapping]] = ...) -> None: ...

class LearningPolicySet(_message.Message):
    __slots__ = ("deployment", "policy", "enabled", "paused", "reason", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    policy: LearningPolicy
    enabled: bool
    paused: bool
    reason: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., policy: _Optional[_Union[LearningPolicy, _Mapping]] = ..., enabled: _Optional[bool] = ..., paused: _Optional[bool] = ..., reason: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class FeedbackWindow(_message.Message):
    __slots__ = ("first_token", "last_token", "first_us", "last_us", "train_n", "holdout_n", "train_digest", "holdout_digest", "holdout_fraction")
    FIRST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LAST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FIRST_US_FIELD_NUMBER: _ClassVar[int]
    LAST_US_FIELD_NUMBER: _ClassVar[int]
    TRAIN_N_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_N_FIELD_NUMBER: _ClassVar[int]
    TRAIN_DIGEST_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_FRACTION_FIELD_NUMBER: _ClassVar[int]
    first_token: str
    last_token: str
    first_us: int
    last_us: int
    train_n: int
    holdout_n: int
    train_digest: str
    holdout_digest: str
    holdout_fraction: float
    def __init__(self, first_token: _Optional[str] = ..., last_token: _Optional[str] = ..., first_us: _Optional[int] = ..., last_us: _Optional[int] = ..., train_n: _Optional[int] = ..., holdout_n: _Optional[int] = ..., train_digest: _Optional[str] = ..., holdout_digest: _Optional[str] = ..., holdout_fraction: _Optional[float] = ...) -> None: ...

class LearningTriggered(_message.Message):
    __slots__ = ("deployment", "run_id", "trigger", "drift_position", "serving_version", "base_job_id", "feedback", "request_id", "at_us", "reason", "program", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    DRIFT_POSITION_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    BASE_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AT_US_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    run_id: str
    trigger: str
    drift_position: int
    serving_version: str
    base_job_id: str
    feedback: FeedbackWindow
    request_id: str
    at_us: int
    reason: str
    program: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., run_id: _Optional[str] = ..., trigger: _Optional[str] = ..., drift_position: _Optional[int] = ..., serving_version: _Optional[str] = ..., base_job_id: _Optional[str] = ..., feedback: _Optional[_Union[FeedbackWindow, _Mapping]] = ..., request_id: _Optional[str] = ..., at_us: _Optional[int] = ..., reason: _Optional[str] = ..., program: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class LearningRunEnded(_message.Message):
    __slots__ = ("deployment", "run_id", "job_id", "result", "candidate_version", "canary_id", "gate", "reason", "final_score", "must_beat_score", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANARY_ID_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FINAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    MUST_BEAT_SCORE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    run_id: str
    job_id: str
    result: str
    candidate_version: str
    canary_id: str
    gate: str
    reason: str
    final_score: float
    must_beat_score: float
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., run_id: _Optional[str] = ..., job_id: _Optional[str] = ..., result: _Optional[str] = ..., candidate_version: _Optional[str] = ..., canary_id: _Optional[str] = ..., gate: _Optional[str] = ..., reason: _Optional[str] = ..., final_score: _Optional[float] = ..., must_beat_score: _Optional[float] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class JobLearning(_message.Message):
    __slots__ = ("deployment", "run_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    run_id: str
    def __init__(self, deployment: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...
