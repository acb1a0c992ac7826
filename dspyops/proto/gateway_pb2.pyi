import datetime

from dspyops.proto import events_pb2 as _events_pb2
from dspyops.proto import common_pb2 as _common_pb2
from dspyops.proto import learning_pb2 as _learning_pb2
from dspyops.proto import evaluators_pb2 as _evaluators_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AsOf(_message.Message):
    __slots__ = ("position", "time")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    position: int
    time: _timestamp_pb2.Timestamp
    def __init__(self, position: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("deployment", "inputs", "routing_key", "as_of", "include_trace")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_KEY_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRACE_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    inputs: _containers.ScalarMap[str, str]
    routing_key: str
    as_of: AsOf
    include_trace: bool
    def __init__(self, deployment: _Optional[str] = ..., inputs: _Optional[_Mapping[str, str]] = ..., routing_key: _Optional[str] = ..., as_of: _Optional[_Union[AsOf, _Mapping]] = ..., include_trace: _Optional[bool] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("outputs", "program", "version", "prediction_id", "log_position", "latency_ms", "bucket", "experiment_id", "hash_version", "seed", "trace", "trace_id")
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    HASH_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    outputs: _containers.ScalarMap[str, str]
    program: str
    version: str
    prediction_id: str
    log_position: int
    latency_ms: float
    bucket: int
    experiment_id: str
    hash_version: int
    seed: str
    trace: _containers.RepeatedCompositeFieldContainer[_events_pb2.ModuleCall]
    trace_id: str
    def __init__(self, outputs: _Optional[_Mapping[str, str]] = ..., program: _Optional[str] = ..., version: _Optional[str] = ..., prediction_id: _Optional[str] = ..., log_position: _Optional[int] = ..., latency_ms: _Optional[float] = ..., bucket: _Optional[int] = ..., experiment_id: _Optional[str] = ..., hash_version: _Optional[int] = ..., seed: _Optional[str] = ..., trace: _Optional[_Iterable[_Union[_events_pb2.ModuleCall, _Mapping]]] = ..., trace_id: _Optional[str] = ...) -> None: ...

class RecordOutcomeRequest(_message.Message):
    __slots__ = ("prediction_id", "value", "request_id", "expected")
    class ExpectedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    prediction_id: str
    value: float
    request_id: str
    expected: _containers.ScalarMap[str, str]
    def __init__(self, prediction_id: _Optional[str] = ..., value: _Optional[float] = ..., request_id: _Optional[str] = ..., expected: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RecordOutcomeResponse(_message.Message):
    __slots__ = ("prediction_id", "version", "experiment_id")
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    prediction_id: str
    version: str
    experiment_id: str
    def __init__(self, prediction_id: _Optional[str] = ..., version: _Optional[str] = ..., experiment_id: _Optional[str] = ...) -> None: ...

class GetDeploymentStateRequest(_message.Message):
    __slots__ = ("deployment", "as_of")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    as_of: AsOf
    def __init__(self, deployment: _Optional[str] = ..., as_of: _Optional[_Union[AsOf, _Mapping]] = ...) -> None: ...

class DeploymentState(_message.Message):
    __slots__ = ("deployment", "program", "routes", "log_position", "state_hash", "changed_at_position", "experiment", "stream_version", "canary", "canary_check", "capture", "drift", "evaluators")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    STATE_HASH_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_POSITION_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    STREAM_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    CANARY_CHECK_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    EVALUATORS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    program: str
    routes: _containers.RepeatedCompositeFieldContainer[_events_pb2.Route]
    log_position: int
    state_hash: str
    changed_at_position: int
    experiment: _events_pb2.Experiment
    stream_version: int
    canary: _events_pb2.Canary
    canary_check: str
    capture: _events_pb2.CapturePolicy
    drift: _events_pb2.DriftMonitor
    evaluators: _containers.RepeatedCompositeFieldContainer[_evaluators_pb2.Evaluator]
    def __init__(self, deployment: _Optional[str] = ..., program: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[_events_pb2.Route, _Mapping]]] = ..., log_position: _Optional[int] = ..., state_hash: _Optional[str] = ..., changed_at_position: _Optional[int] = ..., experiment: _Optional[_Union[_events_pb2.Experiment, _Mapping]] = ..., stream_version: _Optional[int] = ..., canary: _Optional[_Union[_events_pb2.Canary, _Mapping]] = ..., canary_check: _Optional[str] = ..., capture: _Optional[_Union[_events_pb2.CapturePolicy, _Mapping]] = ..., drift: _Optional[_Union[_events_pb2.DriftMonitor, _Mapping]] = ..., evaluators: _Optional[_Iterable[_Union[_evaluators_pb2.Evaluator, _Mapping]]] = ...) -> None: ...

class ListDeploymentStatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDeploymentStatesResponse(_message.Message):
    __slots__ = ("deployments", "log_position")
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentState]
    log_position: int
    def __init__(self, deployments: _Optional[_Iterable[_Union[DeploymentState, _Mapping]]] = ..., log_position: _Optional[int] = ...) -> None: ...

class StartExperimentRequest(_message.Message):
    __slots__ = ("deployment", "control", "treatments", "weights", "metric", "alpha", "min_samples_per_arm", "sequential", "hash_version", "seed", "coverage", "expected_version", "reason", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    TREATMENTS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_PER_ARM_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_FIELD_NUMBER: _ClassVar[int]
    HASH_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    control: str
    treatments: _containers.RepeatedScalarFieldContainer[str]
    weights: _containers.RepeatedScalarFieldContainer[float]
    metric: _events_pb2.MetricKind
    alpha: float
    min_samples_per_arm: int
    sequential: bool
    hash_version: int
    seed: str
    coverage: float
    expected_version: int
    reason: str
    request_id: str
    def __init__(self, deployment: _Optional[str] = ..., control: _Optional[str] = ..., treatments: _Optional[_Iterable[str]] = ..., weights: _Optional[_Iterable[float]] = ..., metric: _Optional[_Union[_events_pb2.MetricKind, str]] = ..., alpha: _Optional[float] = ..., min_samples_per_arm: _Optional[int] = ..., sequential: _Optional[bool] = ..., hash_version: _Optional[int] = ..., seed: _Optional[str] = ..., coverage: _Optional[float] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetExperimentResultsRequest(_message.Message):
    __slots__ = ("deployment", "source", "include_history")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    source: str
    include_history: bool
    def __init__(self, deployment: _Optional[str] = ..., source: _Optional[str] = ..., include_history: _Optional[bool] = ...) -> None: ...

class SequentialLook(_message.Message):
    __slots__ = ("n", "sequential_p_value")
    N_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    n: int
    sequential_p_value: float
    def __init__(self, n: _Optional[int] = ..., sequential_p_value: _Optional[float] = ...) -> None: ...

class ArmResult(_message.Message):
    __slots__ = ("version", "control", "assigned", "n", "mean", "ci_low", "ci_high", "lift", "lift_ci_low", "lift_ci_high", "relative_lift", "p_value", "sequential_p_value", "excluded", "history")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    LIFT_FIELD_NUMBER: _ClassVar[int]
    LIFT_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    LIFT_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_LIFT_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    version: str
    control: bool
    assigned: int
    n: int
    mean: float
    ci_low: float
    ci_high: float
    lift: float
    lift_ci_low: float
    lift_ci_high: float
    relative_lift: float
    p_value: float
    sequential_p_value: float
    excluded: int
    history: _containers.RepeatedCompositeFieldContainer[SequentialLook]
    def __init__(self, version: _Optional[str] = ..., control: _Optional[bool] = ..., assigned: _Optional[int] = ..., n: _Optional[int] = ..., mean: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., lift: _Optional[float] = ..., lift_ci_low: _Optional[float] = ..., lift_ci_high: _Optional[float] = ..., relative_lift: _Optional[float] = ..., p_value: _Optional[float] = ..., sequential_p_value: _Optional[float] = ..., excluded: _Optional[int] = ..., history: _Optional[_Iterable[_Union[SequentialLook, _Mapping]]] = ...) -> None: ...

class ExperimentResults(_message.Message):
    __slots__ = ("deployment", "experiment", "arms", "srm_p_value", "decision", "reason", "winner")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    SRM_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    experiment: _events_pb2.Experiment
    arms: _containers.RepeatedCompositeFieldContainer[ArmResult]
    srm_p_value: float
    decision: str
    reason: str
    winner: str
    def __init__(self, deployment: _Optional[str] = ..., experiment: _Optional[_Union[_events_pb2.Experiment, _Mapping]] = ..., arms: _Optional[_Iterable[_Union[ArmResult, _Mapping]]] = ..., srm_p_value: _Optional[float] = ..., decision: _Optional[str] = ..., reason: _Optional[str] = ..., winner: _Optional[str] = ...) -> None: ...

class ConcludeExperimentRequest(_message.Message):
    __slots__ = ("deployment", "promote_winner", "reason", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PROMOTE_WINNER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    promote_winner: bool
    reason: str
    request_id: str
    def __init__(self, deployment: _Optional[str] = ..., promote_winner: _Optional[bool] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class StopExperimentRequest(_message.Message):
    __slots__ = ("deployment", "reason", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    reason: str
    request_id: str
    def __init__(self, deployment: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("deployment", "to", "reason", "expected_version", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    to: AsOf
    reason: str
    expected_version: int
    request_id: str
    def __init__(self, deployment: _Optional[str] = ..., to: _Optional[_Union[AsOf, _Mapping]] = ..., reason: _Optional[str] = ..., expected_version: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class ExplainPredictionRequest(_message.Message):
    __slots__ = ("prediction_id", "routing_key")
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    ROUTING_KEY_FIELD_NUMBER: _ClassVar[int]
    prediction_id: str
    routing_key: str
    def __init__(self, prediction_id: _Optional[str] = ..., routing_key: _Optional[str] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("prediction_id", "deployment", "recorded_version", "recorded_bucket", "recomputed_version", "recomputed_bucket", "reproduced", "log_position", "experiment_id", "hash_version", "seed", "routing_key_hash", "hash_value", "routes", "reason", "routing_key_matches", "changed_position", "changed_by", "change", "hash_withheld", "code_digests", "stage_lms", "code_drift", "trace", "evaluators", "learning", "trace_id")
    class CodeDigestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    RECORDED_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORDED_BUCKET_FIELD_NUMBER: _ClassVar[int]
    RECOMPUTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECOMPUTED_BUCKET_FIELD_NUMBER: _ClassVar[int]
    REPRODUCED_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    HASH_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ROUTING_KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_VALUE_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ROUTING_KEY_MATCHES_FIELD_NUMBER: _ClassVar[int]
    CHANGED_POSITION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    HASH_WITHHELD_FIELD_NUMBER: _ClassVar[int]
    CODE_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    STAGE_LMS_FIELD_NUMBER: _ClassVar[int]
    CODE_DRIFT_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    EVALUATORS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    prediction_id: str
    deployment: str
    recorded_version: str
    recorded_bucket: int
    recomputed_version: str
    recomputed_bucket: int
    reproduced: bool
    log_position: int
    experiment_id: str
    hash_version: int
    seed: str
    routing_key_hash: str
    hash_value: float
    routes: _containers.RepeatedCompositeFieldContainer[_events_pb2.Route]
    reason: str
    routing_key_matches: bool
    changed_position: int
    changed_by: str
    change: str
    hash_withheld: bool
    code_digests: _containers.ScalarMap[str, str]
    stage_lms: _containers.RepeatedCompositeFieldContainer[_events_pb2.StageLM]
    code_drift: bool
    trace: _containers.RepeatedCompositeFieldContainer[_events_pb2.ModuleCall]
    evaluators: _containers.RepeatedCompositeFieldContainer[_evaluators_pb2.EvaluatorSample]
    learning: LearningLineage
    trace_id: str
    def __init__(self, prediction_id: _Optional[str] = ..., deployment: _Optional[str] = ..., recorded_version: _Optional[str] = ..., recorded_bucket: _Optional[int] = ..., recomputed_version: _Optional[str] = ..., recomputed_bucket: _Optional[int] = ..., reproduced: _Optional[bool] = ..., log_position: _Optional[int] = ..., experiment_id: _Optional[str] = ..., hash_version: _Optional[int] = ..., seed: _Optional[str] = ..., routing_key_hash: _Optional[str] = ..., hash_value: _Optional[float] = ..., routes: _Optional[_Iterable[_Union[_events_pb2.Route, _Mapping]]] = ..., reason: _Optional[str] = ..., routing_key_matches: _Optional[bool] = ..., changed_position: _Optional[int] = ..., changed_by: _Optional[str] = ..., change: _Optional[str] = ..., hash_withheld: _Optional[bool] = ..., code_digests: _Optional[_Mapping[str, str]] = ..., stage_lms: _Optional[_Iterable[_Union[_events_pb2.StageLM, _Mapping]]] = ..., code_drift: _Optional[bool] = ..., trace: _Optional[_Iterable[_Union[_events_pb2.ModuleCall, _Mapping]]] = ..., evaluators: _Optional[_Iterable[_Union[_evaluators_pb2.EvaluatorSample, _Mapping]]] = ..., learning: _Optional[_Union[LearningLineage, _Mapping]] = ..., trace_id: _Optional[str] = ...) -> None: ...

class StartCanaryRequest(_message.Message):
    __slots__ = ("deployment", "candidate", "steps", "min_samples_per_step", "metric", "alpha", "expected_version", "reason", "request_id", "max_error_rate", "max_latency_p95_ms", "max_cost_per_prediction", "step_seconds")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_PER_STEP_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_PER_PREDICTION_FIELD_NUMBER: _ClassVar[int]
    STEP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    candidate: str
    steps: _containers.RepeatedScalarFieldContainer[float]
    min_samples_per_step: int
    metric: _events_pb2.MetricKind
    alpha: float
    expected_version: int
    reason: str
    request_id: str
    max_error_rate: float
    max_latency_p95_ms: float
    max_cost_per_prediction: float
    step_seconds: int
    def __init__(self, deployment: _Optional[str] = ..., candidate: _Optional[str] = ..., steps: _Optional[_Iterable[float]] = ..., min_samples_per_step: _Optional[int] = ..., metric: _Optional[_Union[_events_pb2.MetricKind, str]] = ..., alpha: _Optional[float] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ..., max_error_rate: _Optional[float] = ..., max_latency_p95_ms: _Optional[float] = ..., max_cost_per_prediction: _Optional[float] = ..., step_seconds: _Optional[int] = ...) -> None: ...

class EvaluateCanaryRequest(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    def __init__(self, deployment: _Optional[str] = ...) -> None: ...

class CanaryStatus(_message.Message):
    __slots__ = ("deployment", "canary", "check", "action", "reason", "state")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    canary: _events_pb2.Canary
    check: _events_pb2.GuardrailCheck
    action: str
    reason: str
    state: DeploymentState
    def __init__(self, deployment: _Optional[str] = ..., canary: _Optional[_Union[_events_pb2.Canary, _Mapping]] = ..., check: _Optional[_Union[_events_pb2.GuardrailCheck, _Mapping]] = ..., action: _Optional[str] = ..., reason: _Optional[str] = ..., state: _Optional[_Union[DeploymentState, _Mapping]] = ...) -> None: ...

class GetShadowResultsRequest(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    def __init__(self, deployment: _Optional[str] = ...) -> None: ...

class ShadowVersionResult(_message.Message):
    __slots__ = ("version", "n", "errors", "agreement", "latency_p50_ms", "primary_latency_p50_ms")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    version: str
    n: int
    errors: int
    agreement: float
    latency_p50_ms: float
    primary_latency_p50_ms: float
    def __init__(self, version: _Optional[str] = ..., n: _Optional[int] = ..., errors: _Optional[int] = ..., agreement: _Optional[float] = ..., latency_p50_ms: _Optional[float] = ..., primary_latency_p50_ms: _Optional[float] = ...) -> None: ...

class ShadowResults(_message.Message):
    __slots__ = ("deployment", "versions")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    versions: _containers.RepeatedCompositeFieldContainer[ShadowVersionResult]
    def __init__(self, deployment: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[ShadowVersionResult, _Mapping]]] = ...) -> None: ...

class ExportFeedbackRequest(_message.Message):
    __slots__ = ("deployment", "since", "until", "limit", "page_token")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    limit: int
    page_token: str
    def __init__(self, deployment: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class FeedbackExample(_message.Message):
    __slots__ = ("prediction_id", "version", "recorded_at", "inputs", "expected", "value")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ExpectedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    prediction_id: str
    version: str
    recorded_at: _timestamp_pb2.Timestamp
    inputs: _containers.ScalarMap[str, str]
    expected: _containers.ScalarMap[str, str]
    value: float
    def __init__(self, prediction_id: _Optional[str] = ..., version: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., inputs: _Optional[_Mapping[str, str]] = ..., expected: _Optional[_Mapping[str, str]] = ..., value: _Optional[float] = ...) -> None: ...

class ExportFeedbackResponse(_message.Message):
    __slots__ = ("examples", "skipped", "next_page_token")
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    examples: _containers.RepeatedCompositeFieldContainer[FeedbackExample]
    skipped: int
    next_page_token: str
    def __init__(self, examples: _Optional[_Iterable[_Union[FeedbackExample, _Mapping]]] = ..., skipped: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetDriftMonitorRequest(_message.Message):
    __slots__ = ("deployment", "monitor", "expected_version", "reason", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    monitor: _events_pb2.DriftMonitor
    expected_version: int
    reason: str
    request_id: str
    def __init__(self, deployment: _Optional[str] = ..., monitor: _Optional[_Union[_events_pb2.DriftMonitor, _Mapping]] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetDriftStatusRequest(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    def __init__(self, deployment: _Optional[str] = ...) -> None: ...

class DriftStatus(_message.Message):
    __slots__ = ("deployment", "monitor", "version", "signals", "window", "reference", "detections", "armed_position", "check", "log_position")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    ARMED_POSITION_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    monitor: _events_pb2.DriftMonitor
    version: str
    signals: _containers.RepeatedCompositeFieldContainer[_events_pb2.DriftSignal]
    window: _events_pb2.DriftWindow
    reference: str
    detections: _containers.RepeatedCompositeFieldContainer[_events_pb2.DriftDetected]
    armed_position: int
    check: str
    log_position: int
    def __init__(self, deployment: _Optional[str] = ..., monitor: _Optional[_Union[_events_pb2.DriftMonitor, _Mapping]] = ..., version: _Optional[str] = ..., signals: _Optional[_Iterable[_Union[_events_pb2.DriftSignal, _Mapping]]] = ..., window: _Optional[_Union[_events_pb2.DriftWindow, _Mapping]] = ..., reference: _Optional[str] = ..., detections: _Optional[_Iterable[_Union[_events_pb2.DriftDetected, _Mapping]]] = ..., armed_position: _Optional[int] = ..., check: _Optional[str] = ..., log_position: _Optional[int] = ...) -> None: ...

class SetEvaluatorRequest(_message.Message):
    __slots__ = ("deployment", "evaluator", "expected_version", "reason", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    EVALUATOR_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    evaluator: _evaluators_pb2.Evaluator
    expected_version: int
    reason: str
    request_id: str
    def __init__(self, deployment: _Optional[str] = ..., evaluator: _Optional[_Union[_evaluators_pb2.Evaluator, _Mapping]] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListEvaluatorsRequest(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    def __init__(self, deployment: _Optional[str] = ...) -> None: ...

class EvaluatorStatus(_message.Message):
    __slots__ = ("deployment", "evaluator", "set_position", "sampled", "scored", "dropped", "over_budget", "failed", "lm_calls", "cost_usd", "n", "mean", "source")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    EVALUATOR_FIELD_NUMBER: _ClassVar[int]
    SET_POSITION_FIELD_NUMBER: _ClassVar[int]
    SAMPLED_FIELD_NUMBER: _ClassVar[int]
    SCORED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    OVER_BUDGET_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    LM_CALLS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    evaluator: _evaluators_pb2.Evaluator
    set_position: int
    sampled: int
    scored: int
    dropped: int
    over_budget: int
    failed: int
    lm_calls: int
    cost_usd: float
    n: int
    mean: float
    source: str
    def __init__(self, deployment: _Optional[str] = ..., evaluator: _Optional[_Union[_evaluators_pb2.Evaluator, _Mapping]] = ..., set_position: _Optional[int] = ..., sampled: _Optional[int] = ..., scored: _Optional[int] = ..., dropped: _Optional[int] = ..., over_budget: _Optional[int] = ..., failed: _Optional[int] = ..., lm_calls: _Optional[int] = ..., cost_usd: _Optional[float] = ..., n: _Optional[int] = ..., mean: _Optional[float] = ..., source: _Optional[str] = ...) -> None: ...

class ListEvaluatorsResponse(_message.Message):
    __slots__ = ("deployment", "evaluators", "queued")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    EVALUATORS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    evaluators: _containers.RepeatedCompositeFieldContainer[EvaluatorStatus]
    queued: int
    def __init__(self, deployment: _Optional[str] = ..., evaluators: _Optional[_Iterable[_Union[EvaluatorStatus, _Mapping]]] = ..., queued: _Optional[int] = ...) -> None: ...

class SetLearningPolicyRequest(_message.Message):
    __slots__ = ("deployment", "policy", "enabled", "expected_version", "reason", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    policy: _learning_pb2.LearningPolicy
    enabled: bool
    expected_version: int
    reason: str
    request_id: str
    def __init__(self, deployment: _Optional[str] = ..., policy: _Optional[_Union[_learning_pb2.LearningPolicy, _Mapping]] = ..., enabled: _Optional[bool] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class PauseLearningRequest(_message.Message):
    __slots__ = ("deployment", "paused", "reason", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    paused: bool
    reason: str
    request_id: str
    def __init__(self, deployment: _Optional[str] = ..., paused: _Optional[bool] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetLearningStatusRequest(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    def __init__(self, deployment: _Optional[str] = ...) -> None: ...

class LearningRun(_message.Message):
    __slots__ = ("triggered", "triggered_position", "job_id", "job_state", "gate", "ended", "ended_position")
    TRIGGERED_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_POSITION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_STATE_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    ENDED_POSITION_FIELD_NUMBER: _ClassVar[int]
    triggered: _learning_pb2.LearningTriggered
    triggered_position: int
    job_id: str
    job_state: str
    gate: str
    ended: _learning_pb2.LearningRunEnded
    ended_position: int
    def __init__(self, triggered: _Optional[_Union[_learning_pb2.LearningTriggered, _Mapping]] = ..., triggered_position: _Optional[int] = ..., job_id: _Optional[str] = ..., job_state: _Optional[str] = ..., gate: _Optional[str] = ..., ended: _Optional[_Union[_learning_pb2.LearningRunEnded, _Mapping]] = ..., ended_position: _Optional[int] = ...) -> None: ...

class LearningStatus(_message.Message):
    __slots__ = ("deployment", "policy", "enabled", "paused", "idle", "drift", "last_detection", "last_detection_position", "new_examples", "active", "last", "canary", "canary_percent", "loop", "log_position")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    LAST_DETECTION_FIELD_NUMBER: _ClassVar[int]
    LAST_DETECTION_POSITION_FIELD_NUMBER: _ClassVar[int]
    NEW_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    CANARY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    LOOP_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    policy: _learning_pb2.LearningPolicy
    enabled: bool
    paused: bool
    idle: str
    drift: DriftStatus
    last_detection: _events_pb2.DriftDetected
    last_detection_position: int
    new_examples: int
    active: LearningRun
    last: LearningRun
    canary: _events_pb2.Canary
    canary_percent: float
    loop: str
    log_position: int
    def __init__(self, deployment: _Optional[str] = ..., policy: _Optional[_Union[_learning_pb2.LearningPolicy, _Mapping]] = ..., enabled: _Optional[bool] = ..., paused: _Optional[bool] = ..., idle: _Optional[str] = ..., drift: _Optional[_Union[DriftStatus, _Mapping]] = ..., last_detection: _Optional[_Union[_events_pb2.DriftDetected, _Mapping]] = ..., last_detection_position: _Optional[int] = ..., new_examples: _Optional[int] = ..., active: _Optional[_Union[LearningRun, _Mapping]] = ..., last: _Optional[_Union[LearningRun, _Mapping]] = ..., canary: _Optional[_Union[_events_pb2.Canary, _Mapping]] = ..., canary_percent: _Optional[float] = ..., loop: _Optional[str] = ..., log_position: _Optional[int] = ...) -> None: ...

class LearningLineage(_message.Message):
    __slots__ = ("run_id", "trigger", "drift_position", "detection", "feedback", "base_job_id", "job_id", "serving_version", "triggered_position")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    DRIFT_POSITION_FIELD_NUMBER: _ClassVar[int]
    DETECTION_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    BASE_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_POSITION_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    trigger: str
    drift_position: int
    detection: _events_pb2.DriftDetected
    feedback: _learning_pb2.FeedbackWindow
    base_job_id: str
    job_id: str
    serving_version: str
    triggered_position: int
    def __init__(self, run_id: _Optional[str] = ..., trigger: _Optional[str] = ..., drift_position: _Optional[int] = ..., detection: _Optional[_Union[_events_pb2.DriftDetected, _Mapping]] = ..., feedback: _Optional[_Union[_learning_pb2.FeedbackWindow, _Mapping]] = ..., base_job_id: _Optional[str] = ..., job_id: _Optional[str] = ..., serving_version: _Optional[str] = ..., triggered_position: _Optional[int] = ...) -> None: ...
