import datetime

from dspyops.proto import common_pb2 as _common_pb2
from dspyops.proto import learning_pb2 as _learning_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from dspyops.proto import evaluators_pb2 as _evaluators_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union
from dspyops.proto.common_pb2 import RequestOrigin as RequestOrigin
from dspyops.proto.common_pb2 import Budget as Budget
from dspyops.proto.learning_pb2 import LearningCanary as LearningCanary
from dspyops.proto.learning_pb2 import LearningPolicy as LearningPolicy
from dspyops.proto.learning_pb2 import LearningPolicySet as LearningPolicySet
from dspyops.proto.learning_pb2 import FeedbackWindow as FeedbackWindow
from dspyops.proto.learning_pb2 import LearningTriggered as LearningTriggered
from dspyops.proto.learning_pb2 import LearningRunEnded as LearningRunEnded
from dspyops.proto.learning_pb2 import JobLearning as JobLearning
from dspyops.proto.evaluators_pb2 import Evaluator as Evaluator
from dspyops.proto.evaluators_pb2 import EvaluatorSet as EvaluatorSet
from dspyops.proto.evaluators_pb2 import EvaluatorSample as EvaluatorSample

DESCRIPTOR: _descriptor.FileDescriptor

class VersionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSION_STATUS_UNSPECIFIED: _ClassVar[VersionStatus]
    DEVELOPMENT: _ClassVar[VersionStatus]
    STAGING: _ClassVar[VersionStatus]
    PRODUCTION: _ClassVar[VersionStatus]
    DEPRECATED: _ClassVar[VersionStatus]
    ARCHIVED: _ClassVar[VersionStatus]

class RouteRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_ROLE_UNSPECIFIED: _ClassVar[RouteRole]
    PRIMARY: _ClassVar[RouteRole]
    SHADOW: _ClassVar[RouteRole]

class MetricKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_KIND_UNSPECIFIED: _ClassVar[MetricKind]
    BINARY: _ClassVar[MetricKind]
    CONTINUOUS: _ClassVar[MetricKind]
VERSION_STATUS_UNSPECIFIED: VersionStatus
DEVELOPMENT: VersionStatus
STAGING: VersionStatus
PRODUCTION: VersionStatus
DEPRECATED: VersionStatus
ARCHIVED: VersionStatus
ROUTE_ROLE_UNSPECIFIED: RouteRole
PRIMARY: RouteRole
SHADOW: RouteRole
METRIC_KIND_UNSPECIFIED: MetricKind
BINARY: MetricKind
CONTINUOUS: MetricKind

class ProgramSpec(_message.Message):
    __slots__ = ("module", "signature", "instructions", "pipeline", "init_args", "wrapper")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    INIT_ARGS_FIELD_NUMBER: _ClassVar[int]
    WRAPPER_FIELD_NUMBER: _ClassVar[int]
    module: str
    signature: str
    instructions: str
    pipeline: Pipeline
    init_args: str
    wrapper: str
    def __init__(self, module: _Optional[str] = ..., signature: _Optional[str] = ..., instructions: _Optional[str] = ..., pipeline: _Optional[_Union[Pipeline, _Mapping]] = ..., init_args: _Optional[str] = ..., wrapper: _Optional[str] = ...) -> None: ...

class Pipeline(_message.Message):
    __slots__ = ("stages", "outputs")
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STAGES_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    stages: _containers.RepeatedCompositeFieldContainer[Stage]
    outputs: _containers.ScalarMap[str, str]
    def __init__(self, stages: _Optional[_Iterable[_Union[Stage, _Mapping]]] = ..., outputs: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Stage(_message.Message):
    __slots__ = ("name", "kind", "signature", "instructions", "inputs", "tools", "max_iters", "tool_timeout_seconds", "corpus", "k")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    MAX_ITERS_FIELD_NUMBER: _ClassVar[int]
    TOOL_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CORPUS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    signature: str
    instructions: str
    inputs: _containers.ScalarMap[str, str]
    tools: _containers.RepeatedScalarFieldContainer[str]
    max_iters: int
    tool_timeout_seconds: float
    corpus: str
    k: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., signature: _Optional[str] = ..., instructions: _Optional[str] = ..., inputs: _Optional[_Mapping[str, str]] = ..., tools: _Optional[_Iterable[str]] = ..., max_iters: _Optional[int] = ..., tool_timeout_seconds: _Optional[float] = ..., corpus: _Optional[str] = ..., k: _Optional[int] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("id", "text")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class StageLM(_message.Message):
    __slots__ = ("stage", "connection", "model")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    stage: str
    connection: str
    model: str
    def __init__(self, stage: _Optional[str] = ..., connection: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class ModuleCall(_message.Message):
    __slots__ = ("name", "module", "inputs", "outputs", "latency_ms", "usage", "trajectory", "error")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    module: str
    inputs: _containers.ScalarMap[str, str]
    outputs: _containers.ScalarMap[str, str]
    latency_ms: float
    usage: Usage
    trajectory: str
    error: str
    def __init__(self, name: _Optional[str] = ..., module: _Optional[str] = ..., inputs: _Optional[_Mapping[str, str]] = ..., outputs: _Optional[_Mapping[str, str]] = ..., latency_ms: _Optional[float] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., trajectory: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class CapturePolicy(_message.Message):
    __slots__ = ("traces", "inputs_outputs", "fields", "retention_days")
    TRACES_FIELD_NUMBER: _ClassVar[int]
    INPUTS_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    traces: bool
    inputs_outputs: bool
    fields: _containers.RepeatedScalarFieldContainer[str]
    retention_days: int
    def __init__(self, traces: _Optional[bool] = ..., inputs_outputs: _Optional[bool] = ..., fields: _Optional[_Iterable[str]] = ..., retention_days: _Optional[int] = ...) -> None: ...

class LMConfig(_message.Message):
    __slots__ = ("model", "temperature", "max_tokens", "api_base", "api_key_env", "connection")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    API_BASE_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ENV_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    model: str
    temperature: float
    max_tokens: int
    api_base: str
    api_key_env: str
    connection: str
    def __init__(self, model: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., api_base: _Optional[str] = ..., api_key_env: _Optional[str] = ..., connection: _Optional[str] = ...) -> None: ...

class ConnectionInfo(_message.Message):
    __slots__ = ("name", "provider", "endpoint", "models", "has_key", "default_max_tokens", "max_tokens_cap", "min_temperature", "max_temperature", "input_usd_per_mtok", "output_usd_per_mtok")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    HAS_KEY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_CAP_FIELD_NUMBER: _ClassVar[int]
    MIN_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    INPUT_USD_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_USD_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    name: str
    provider: str
    endpoint: str
    models: _containers.RepeatedScalarFieldContainer[str]
    has_key: bool
    default_max_tokens: int
    max_tokens_cap: int
    min_temperature: float
    max_temperature: float
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    def __init__(self, name: _Optional[str] = ..., provider: _Optional[str] = ..., endpoint: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., has_key: _Optional[bool] = ..., default_max_tokens: _Optional[int] = ..., max_tokens_cap: _Optional[int] = ..., min_temperature: _Optional[float] = ..., max_temperature: _Optional[float] = ..., input_usd_per_mtok: _Optional[float] = ..., output_usd_per_mtok: _Optional[float] = ...) -> None: ...

class ListConnectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListConnectionsResponse(_message.Message):
    __slots__ = ("connections",)
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    connections: _containers.RepeatedCompositeFieldContainer[ConnectionInfo]
    def __init__(self, connections: _Optional[_Iterable[_Union[ConnectionInfo, _Mapping]]] = ...) -> None: ...

class Example(_message.Message):
    __slots__ = ("fields", "input_keys")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    INPUT_KEYS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.ScalarMap[str, str]
    input_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, fields: _Optional[_Mapping[str, str]] = ..., input_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class Lineage(_message.Message):
    __slots__ = ("job_id", "optimizer", "params", "metric", "trainset_digest", "valset_digest", "trainset_size", "valset_size", "baseline_score", "final_score", "dspy_version", "code_digests", "code_distribution", "code_version", "corpora")
    class CodeDigestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class CorporaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    TRAINSET_DIGEST_FIELD_NUMBER: _ClassVar[int]
    VALSET_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TRAINSET_SIZE_FIELD_NUMBER: _ClassVar[int]
    VALSET_SIZE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SCORE_FIELD_NUMBER: _ClassVar[int]
    FINAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    DSPY_VERSION_FIELD_NUMBER: _ClassVar[int]
    CODE_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    CODE_DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CORPORA_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    optimizer: str
    params: _struct_pb2.Struct
    metric: str
    trainset_digest: str
    valset_digest: str
    trainset_size: int
    valset_size: int
    baseline_score: float
    final_score: float
    dspy_version: str
    code_digests: _containers.ScalarMap[str, str]
    code_distribution: str
    code_version: str
    corpora: _containers.ScalarMap[str, str]
    def __init__(self, job_id: _Optional[str] = ..., optimizer: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metric: _Optional[str] = ..., trainset_digest: _Optional[str] = ..., valset_digest: _Optional[str] = ..., trainset_size: _Optional[int] = ..., valset_size: _Optional[int] = ..., baseline_score: _Optional[float] = ..., final_score: _Optional[float] = ..., dspy_version: _Optional[str] = ..., code_digests: _Optional[_Mapping[str, str]] = ..., code_distribution: _Optional[str] = ..., code_version: _Optional[str] = ..., corpora: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("version", "weight", "role")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    version: str
    weight: float
    role: RouteRole
    def __init__(self, version: _Optional[str] = ..., weight: _Optional[float] = ..., role: _Optional[_Union[RouteRole, str]] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("lm_calls", "input_tokens", "output_tokens", "cost_usd", "replayed_lm_calls")
    LM_CALLS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_LM_CALLS_FIELD_NUMBER: _ClassVar[int]
    lm_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    replayed_lm_calls: int
    def __init__(self, lm_calls: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., replayed_lm_calls: _Optional[int] = ...) -> None: ...

class GateEvaluated(_message.Message):
    __slots__ = ("passed", "reason", "final_score", "min_score", "must_beat", "must_beat_score", "min_improvement", "fence")
    PASSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FINAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MUST_BEAT_FIELD_NUMBER: _ClassVar[int]
    MUST_BEAT_SCORE_FIELD_NUMBER: _ClassVar[int]
    MIN_IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    passed: bool
    reason: str
    final_score: float
    min_score: float
    must_beat: str
    must_beat_score: float
    min_improvement: float
    fence: int
    def __init__(self, passed: _Optional[bool] = ..., reason: _Optional[str] = ..., final_score: _Optional[float] = ..., min_score: _Optional[float] = ..., must_beat: _Optional[str] = ..., must_beat_score: _Optional[float] = ..., min_improvement: _Optional[float] = ..., fence: _Optional[int] = ...) -> None: ...

class ClassMetrics(_message.Message):
    __slots__ = ("label", "precision", "recall", "f1", "support")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    label: str
    precision: float
    recall: float
    f1: float
    support: int
    def __init__(self, label: _Optional[str] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ..., support: _Optional[int] = ...) -> None: ...

class ExampleResult(_message.Message):
    __slots__ = ("inputs", "expected", "predicted", "score", "error", "latency_ms")
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
    class PredictedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    inputs: _containers.ScalarMap[str, str]
    expected: _containers.ScalarMap[str, str]
    predicted: _containers.ScalarMap[str, str]
    score: float
    error: str
    latency_ms: float
    def __init__(self, inputs: _Optional[_Mapping[str, str]] = ..., expected: _Optional[_Mapping[str, str]] = ..., predicted: _Optional[_Mapping[str, str]] = ..., score: _Optional[float] = ..., error: _Optional[str] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class EvaluationReport(_message.Message):
    __slots__ = ("program", "version", "metric", "dataset_digest", "examples", "score", "accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class", "latency_p50_ms", "latency_p95_ms", "usage", "errors", "results", "stages")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    DATASET_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MACRO_PRECISION_FIELD_NUMBER: _ClassVar[int]
    MACRO_RECALL_FIELD_NUMBER: _ClassVar[int]
    MACRO_F1_FIELD_NUMBER: _ClassVar[int]
    PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    program: str
    version: str
    metric: str
    dataset_digest: str
    examples: int
    score: float
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    per_class: _containers.RepeatedCompositeFieldContainer[ClassMetrics]
    latency_p50_ms: float
    latency_p95_ms: float
    usage: Usage
    errors: int
    results: _containers.RepeatedCompositeFieldContainer[ExampleResult]
    stages: _containers.RepeatedCompositeFieldContainer[StageReport]
    def __init__(self, program: _Optional[str] = ..., version: _Optional[str] = ..., metric: _Optional[str] = ..., dataset_digest: _Optional[str] = ..., examples: _Optional[int] = ..., score: _Optional[float] = ..., accuracy: _Optional[float] = ..., macro_precision: _Optional[float] = ..., macro_recall: _Optional[float] = ..., macro_f1: _Optional[float] = ..., per_class: _Optional[_Iterable[_Union[ClassMetrics, _Mapping]]] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., errors: _Optional[int] = ..., results: _Optional[_Iterable[_Union[ExampleResult, _Mapping]]] = ..., stages: _Optional[_Iterable[_Union[StageReport, _Mapping]]] = ...) -> None: ...

class StageReport(_message.Message):
    __slots__ = ("name", "calls", "latency_p50_ms", "latency_p95_ms", "usage")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    calls: int
    latency_p50_ms: float
    latency_p95_ms: float
    usage: Usage
    def __init__(self, name: _Optional[str] = ..., calls: _Optional[int] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class EvaluationRecorded(_message.Message):
    __slots__ = ("program", "version", "report")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    program: str
    version: str
    report: EvaluationReport
    def __init__(self, program: _Optional[str] = ..., version: _Optional[str] = ..., report: _Optional[_Union[EvaluationReport, _Mapping]] = ...) -> None: ...

class JobAccepted(_message.Message):
    __slots__ = ("job_id", "program", "spec", "lm", "optimizer", "params", "metric", "trainset_digest", "valset_digest", "trainset_size", "valset_size", "min_score", "auto_promote", "max_attempts", "lease_ms", "inputs", "origin", "learning")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    TRAINSET_DIGEST_FIELD_NUMBER: _ClassVar[int]
    VALSET_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TRAINSET_SIZE_FIELD_NUMBER: _ClassVar[int]
    VALSET_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    AUTO_PROMOTE_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    LEARNING_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    program: str
    spec: ProgramSpec
    lm: LMConfig
    optimizer: str
    params: _struct_pb2.Struct
    metric: str
    trainset_digest: str
    valset_digest: str
    trainset_size: int
    valset_size: int
    min_score: float
    auto_promote: bool
    max_attempts: int
    lease_ms: int
    inputs: JobInputs
    origin: _common_pb2.RequestOrigin
    learning: _learning_pb2.JobLearning
    def __init__(self, job_id: _Optional[str] = ..., program: _Optional[str] = ..., spec: _Optional[_Union[ProgramSpec, _Mapping]] = ..., lm: _Optional[_Union[LMConfig, _Mapping]] = ..., optimizer: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metric: _Optional[str] = ..., trainset_digest: _Optional[str] = ..., valset_digest: _Optional[str] = ..., trainset_size: _Optional[int] = ..., valset_size: _Optional[int] = ..., min_score: _Optional[float] = ..., auto_promote: _Optional[bool] = ..., max_attempts: _Optional[int] = ..., lease_ms: _Optional[int] = ..., inputs: _Optional[_Union[JobInputs, _Mapping]] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ..., learning: _Optional[_Union[_learning_pb2.JobLearning, _Mapping]] = ...) -> None: ...

class JobInputs(_message.Message):
    __slots__ = ("trainset", "valset", "input_keys", "prompt_lm", "budget", "must_beat_version", "min_improvement")
    TRAINSET_FIELD_NUMBER: _ClassVar[int]
    VALSET_FIELD_NUMBER: _ClassVar[int]
    INPUT_KEYS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_LM_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    MUST_BEAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    trainset: bytes
    valset: bytes
    input_keys: _containers.RepeatedScalarFieldContainer[str]
    prompt_lm: LMConfig
    budget: _common_pb2.Budget
    must_beat_version: str
    min_improvement: float
    def __init__(self, trainset: _Optional[bytes] = ..., valset: _Optional[bytes] = ..., input_keys: _Optional[_Iterable[str]] = ..., prompt_lm: _Optional[_Union[LMConfig, _Mapping]] = ..., budget: _Optional[_Union[_common_pb2.Budget, _Mapping]] = ..., must_beat_version: _Optional[str] = ..., min_improvement: _Optional[float] = ...) -> None: ...

class JobClaimed(_message.Message):
    __slots__ = ("owner", "attempt")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    owner: str
    attempt: int
    def __init__(self, owner: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class JobRetried(_message.Message):
    __slots__ = ("attempt", "lost_fence", "lost_owner", "reason")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    LOST_FENCE_FIELD_NUMBER: _ClassVar[int]
    LOST_OWNER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    lost_fence: int
    lost_owner: str
    reason: str
    def __init__(self, attempt: _Optional[int] = ..., lost_fence: _Optional[int] = ..., lost_owner: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class JobLeaseRenewed(_message.Message):
    __slots__ = ("fence",)
    FENCE_FIELD_NUMBER: _ClassVar[int]
    fence: int
    def __init__(self, fence: _Optional[int] = ...) -> None: ...

class JobLeaseReleased(_message.Message):
    __slots__ = ("reason", "fence")
    REASON_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    fence: int
    def __init__(self, reason: _Optional[str] = ..., fence: _Optional[int] = ...) -> None: ...

class JobCancelRequested(_message.Message):
    __slots__ = ("reason", "origin")
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    reason: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, reason: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ("optimizer", "planned_trials", "fence")
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    PLANNED_TRIALS_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    optimizer: str
    planned_trials: int
    fence: int
    def __init__(self, optimizer: _Optional[str] = ..., planned_trials: _Optional[int] = ..., fence: _Optional[int] = ...) -> None: ...

class BaselineEvaluated(_message.Message):
    __slots__ = ("score", "examples", "fence")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    score: float
    examples: int
    fence: int
    def __init__(self, score: _Optional[float] = ..., examples: _Optional[int] = ..., fence: _Optional[int] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("step", "total", "message", "predictor", "fence")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    step: int
    total: int
    message: str
    predictor: str
    fence: int
    def __init__(self, step: _Optional[int] = ..., total: _Optional[int] = ..., message: _Optional[str] = ..., predictor: _Optional[str] = ..., fence: _Optional[int] = ...) -> None: ...

class TrialCompleted(_message.Message):
    __slots__ = ("trial", "score", "best_score", "candidate", "predictors", "fence")
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BEST_SCORE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    PREDICTORS_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    trial: int
    score: float
    best_score: float
    candidate: str
    predictors: _containers.RepeatedScalarFieldContainer[str]
    fence: int
    def __init__(self, trial: _Optional[int] = ..., score: _Optional[float] = ..., best_score: _Optional[float] = ..., candidate: _Optional[str] = ..., predictors: _Optional[_Iterable[str]] = ..., fence: _Optional[int] = ...) -> None: ...

class JobCompleted(_message.Message):
    __slots__ = ("program", "version", "final_score", "baseline_score", "improvement", "gate_passed", "gate_reason", "status", "usage", "wall_seconds", "artifact_digest", "fence", "existing_version")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FINAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SCORE_FIELD_NUMBER: _ClassVar[int]
    IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    GATE_PASSED_FIELD_NUMBER: _ClassVar[int]
    GATE_REASON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    WALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    EXISTING_VERSION_FIELD_NUMBER: _ClassVar[int]
    program: str
    version: str
    final_score: float
    baseline_score: float
    improvement: float
    gate_passed: bool
    gate_reason: str
    status: VersionStatus
    usage: Usage
    wall_seconds: float
    artifact_digest: str
    fence: int
    existing_version: bool
    def __init__(self, program: _Optional[str] = ..., version: _Optional[str] = ..., final_score: _Optional[float] = ..., baseline_score: _Optional[float] = ..., improvement: _Optional[float] = ..., gate_passed: _Optional[bool] = ..., gate_reason: _Optional[str] = ..., status: _Optional[_Union[VersionStatus, str]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., wall_seconds: _Optional[float] = ..., artifact_digest: _Optional[str] = ..., fence: _Optional[int] = ..., existing_version: _Optional[bool] = ...) -> None: ...

class JobFailed(_message.Message):
    __slots__ = ("error", "usage", "fence")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    error: str
    usage: Usage
    fence: int
    def __init__(self, error: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., fence: _Optional[int] = ...) -> None: ...

class JobCancelled(_message.Message):
    __slots__ = ("reason", "usage", "budget", "fence")
    REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    usage: Usage
    budget: str
    fence: int
    def __init__(self, reason: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., budget: _Optional[str] = ..., fence: _Optional[int] = ...) -> None: ...

class JobInterrupted(_message.Message):
    __slots__ = ("reason", "fence")
    REASON_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    fence: int
    def __init__(self, reason: _Optional[str] = ..., fence: _Optional[int] = ...) -> None: ...

class VersionRegistered(_message.Message):
    __slots__ = ("program", "version", "spec", "lm", "artifact_digest", "artifact", "lineage", "status", "origin")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    program: str
    version: str
    spec: ProgramSpec
    lm: LMConfig
    artifact_digest: str
    artifact: bytes
    lineage: Lineage
    status: VersionStatus
    origin: _common_pb2.RequestOrigin
    def __init__(self, program: _Optional[str] = ..., version: _Optional[str] = ..., spec: _Optional[_Union[ProgramSpec, _Mapping]] = ..., lm: _Optional[_Union[LMConfig, _Mapping]] = ..., artifact_digest: _Optional[str] = ..., artifact: _Optional[bytes] = ..., lineage: _Optional[_Union[Lineage, _Mapping]] = ..., status: _Optional[_Union[VersionStatus, str]] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class VersionStatusChanged(_message.Message):
    __slots__ = ("program", "version", "status", "previous_status", "reason", "origin")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    program: str
    version: str
    status: VersionStatus
    previous_status: VersionStatus
    reason: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, program: _Optional[str] = ..., version: _Optional[str] = ..., status: _Optional[_Union[VersionStatus, str]] = ..., previous_status: _Optional[_Union[VersionStatus, str]] = ..., reason: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class AliasSet(_message.Message):
    __slots__ = ("program", "alias", "version", "previous_version", "origin")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    program: str
    alias: str
    version: str
    previous_version: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, program: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[str] = ..., previous_version: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class DeploymentCreated(_message.Message):
    __slots__ = ("deployment", "program", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    program: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., program: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class RoutesSet(_message.Message):
    __slots__ = ("deployment", "routes", "reason", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    reason: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., reason: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("experiment_id", "control", "treatments", "weights", "metric", "alpha", "min_samples_per_arm", "sequential", "hash_version", "seed", "coverage")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
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
    experiment_id: str
    control: str
    treatments: _containers.RepeatedScalarFieldContainer[str]
    weights: _containers.RepeatedScalarFieldContainer[float]
    metric: MetricKind
    alpha: float
    min_samples_per_arm: int
    sequential: bool
    hash_version: int
    seed: str
    coverage: float
    def __init__(self, experiment_id: _Optional[str] = ..., control: _Optional[str] = ..., treatments: _Optional[_Iterable[str]] = ..., weights: _Optional[_Iterable[float]] = ..., metric: _Optional[_Union[MetricKind, str]] = ..., alpha: _Optional[float] = ..., min_samples_per_arm: _Optional[int] = ..., sequential: _Optional[bool] = ..., hash_version: _Optional[int] = ..., seed: _Optional[str] = ..., coverage: _Optional[float] = ...) -> None: ...

class ExperimentStarted(_message.Message):
    __slots__ = ("deployment", "experiment", "reason", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    experiment: Experiment
    reason: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., experiment: _Optional[_Union[Experiment, _Mapping]] = ..., reason: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class ExperimentConcluded(_message.Message):
    __slots__ = ("deployment", "experiment_id", "decision", "winner", "routes", "reason", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    experiment_id: str
    decision: str
    winner: str
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    reason: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., experiment_id: _Optional[str] = ..., decision: _Optional[str] = ..., winner: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., reason: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class ExperimentStopped(_message.Message):
    __slots__ = ("deployment", "experiment_id", "reason", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    experiment_id: str
    reason: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., experiment_id: _Optional[str] = ..., reason: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class RolledBack(_message.Message):
    __slots__ = ("deployment", "to_position", "routes", "experiment", "reason", "canary", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    TO_POSITION_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    to_position: int
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    experiment: Experiment
    reason: str
    canary: Canary
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., to_position: _Optional[int] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., experiment: _Optional[_Union[Experiment, _Mapping]] = ..., reason: _Optional[str] = ..., canary: _Optional[_Union[Canary, _Mapping]] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class Canary(_message.Message):
    __slots__ = ("canary_id", "baseline", "candidate", "steps", "min_samples_per_step", "metric", "alpha", "step", "max_error_rate", "max_latency_p95_ms", "max_cost_per_prediction", "step_seconds", "step_started_us")
    CANARY_ID_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_PER_STEP_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_PER_PREDICTION_FIELD_NUMBER: _ClassVar[int]
    STEP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STEP_STARTED_US_FIELD_NUMBER: _ClassVar[int]
    canary_id: str
    baseline: str
    candidate: str
    steps: _containers.RepeatedScalarFieldContainer[float]
    min_samples_per_step: int
    metric: MetricKind
    alpha: float
    step: int
    max_error_rate: float
    max_latency_p95_ms: float
    max_cost_per_prediction: float
    step_seconds: int
    step_started_us: int
    def __init__(self, canary_id: _Optional[str] = ..., baseline: _Optional[str] = ..., candidate: _Optional[str] = ..., steps: _Optional[_Iterable[float]] = ..., min_samples_per_step: _Optional[int] = ..., metric: _Optional[_Union[MetricKind, str]] = ..., alpha: _Optional[float] = ..., step: _Optional[int] = ..., max_error_rate: _Optional[float] = ..., max_latency_p95_ms: _Optional[float] = ..., max_cost_per_prediction: _Optional[float] = ..., step_seconds: _Optional[int] = ..., step_started_us: _Optional[int] = ...) -> None: ...

class GuardrailCheck(_message.Message):
    __slots__ = ("candidate_n", "candidate_mean", "baseline_n", "baseline_mean", "p_value", "worse", "excluded", "guardrails", "step_started_us", "checked_at_us")
    CANDIDATE_N_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_MEAN_FIELD_NUMBER: _ClassVar[int]
    BASELINE_N_FIELD_NUMBER: _ClassVar[int]
    BASELINE_MEAN_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    WORSE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    STEP_STARTED_US_FIELD_NUMBER: _ClassVar[int]
    CHECKED_AT_US_FIELD_NUMBER: _ClassVar[int]
    candidate_n: int
    candidate_mean: float
    baseline_n: int
    baseline_mean: float
    p_value: float
    worse: bool
    excluded: int
    guardrails: _containers.RepeatedCompositeFieldContainer[GuardrailResult]
    step_started_us: int
    checked_at_us: int
    def __init__(self, candidate_n: _Optional[int] = ..., candidate_mean: _Optional[float] = ..., baseline_n: _Optional[int] = ..., baseline_mean: _Optional[float] = ..., p_value: _Optional[float] = ..., worse: _Optional[bool] = ..., excluded: _Optional[int] = ..., guardrails: _Optional[_Iterable[_Union[GuardrailResult, _Mapping]]] = ..., step_started_us: _Optional[int] = ..., checked_at_us: _Optional[int] = ...) -> None: ...

class GuardrailResult(_message.Message):
    __slots__ = ("guardrail", "value", "threshold", "n", "baseline_value", "baseline_n", "p_value", "judged", "failed", "note")
    GUARDRAIL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_N_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    JUDGED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    guardrail: str
    value: float
    threshold: float
    n: int
    baseline_value: float
    baseline_n: int
    p_value: float
    judged: bool
    failed: bool
    note: str
    def __init__(self, guardrail: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., n: _Optional[int] = ..., baseline_value: _Optional[float] = ..., baseline_n: _Optional[int] = ..., p_value: _Optional[float] = ..., judged: _Optional[bool] = ..., failed: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class CanaryStarted(_message.Message):
    __slots__ = ("deployment", "canary", "reason", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    canary: Canary
    reason: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., canary: _Optional[_Union[Canary, _Mapping]] = ..., reason: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class CanaryAdvanced(_message.Message):
    __slots__ = ("deployment", "canary_id", "step", "percent", "check", "reason", "started_us")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CANARY_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_US_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    canary_id: str
    step: int
    percent: float
    check: GuardrailCheck
    reason: str
    started_us: int
    def __init__(self, deployment: _Optional[str] = ..., canary_id: _Optional[str] = ..., step: _Optional[int] = ..., percent: _Optional[float] = ..., check: _Optional[_Union[GuardrailCheck, _Mapping]] = ..., reason: _Optional[str] = ..., started_us: _Optional[int] = ...) -> None: ...

class CanaryEnded(_message.Message):
    __slots__ = ("deployment", "canary_id", "promoted", "routes", "check", "reason")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CANARY_ID_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    canary_id: str
    promoted: bool
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    check: GuardrailCheck
    reason: str
    def __init__(self, deployment: _Optional[str] = ..., canary_id: _Optional[str] = ..., promoted: _Optional[bool] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., check: _Optional[_Union[GuardrailCheck, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class CorpusRegistered(_message.Message):
    __slots__ = ("corpus", "digest", "documents", "count", "origin")
    CORPUS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    corpus: str
    digest: str
    documents: bytes
    count: int
    origin: _common_pb2.RequestOrigin
    def __init__(self, corpus: _Optional[str] = ..., digest: _Optional[str] = ..., documents: _Optional[bytes] = ..., count: _Optional[int] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class CapturePolicySet(_message.Message):
    __slots__ = ("deployment", "policy", "reason", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    policy: CapturePolicy
    reason: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., policy: _Optional[_Union[CapturePolicy, _Mapping]] = ..., reason: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class DriftMonitor(_message.Message):
    __slots__ = ("enabled", "metric", "alpha", "reference", "reference_window", "min_outcomes", "max_error_rate", "max_latency_p95_ms", "max_cost_per_prediction")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_WINDOW_FIELD_NUMBER: _ClassVar[int]
    MIN_OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_PER_PREDICTION_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    metric: MetricKind
    alpha: float
    reference: str
    reference_window: int
    min_outcomes: int
    max_error_rate: float
    max_latency_p95_ms: float
    max_cost_per_prediction: float
    def __init__(self, enabled: _Optional[bool] = ..., metric: _Optional[_Union[MetricKind, str]] = ..., alpha: _Optional[float] = ..., reference: _Optional[str] = ..., reference_window: _Optional[int] = ..., min_outcomes: _Optional[int] = ..., max_error_rate: _Optional[float] = ..., max_latency_p95_ms: _Optional[float] = ..., max_cost_per_prediction: _Optional[float] = ...) -> None: ...

class DriftMonitorSet(_message.Message):
    __slots__ = ("deployment", "monitor", "reason", "origin")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    monitor: DriftMonitor
    reason: str
    origin: _common_pb2.RequestOrigin
    def __init__(self, deployment: _Optional[str] = ..., monitor: _Optional[_Union[DriftMonitor, _Mapping]] = ..., reason: _Optional[str] = ..., origin: _Optional[_Union[_common_pb2.RequestOrigin, _Mapping]] = ...) -> None: ...

class DriftSignal(_message.Message):
    __slots__ = ("signal", "value", "reference", "n", "reference_n", "p_value", "drifted", "note")
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_N_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    signal: str
    value: float
    reference: float
    n: int
    reference_n: int
    p_value: float
    drifted: bool
    note: str
    def __init__(self, signal: _Optional[str] = ..., value: _Optional[float] = ..., reference: _Optional[float] = ..., n: _Optional[int] = ..., reference_n: _Optional[int] = ..., p_value: _Optional[float] = ..., drifted: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class DriftWindow(_message.Message):
    __slots__ = ("from_position", "n", "first_us", "last_us", "outcomes")
    FROM_POSITION_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    FIRST_US_FIELD_NUMBER: _ClassVar[int]
    LAST_US_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    from_position: int
    n: int
    first_us: int
    last_us: int
    outcomes: int
    def __init__(self, from_position: _Optional[int] = ..., n: _Optional[int] = ..., first_us: _Optional[int] = ..., last_us: _Optional[int] = ..., outcomes: _Optional[int] = ...) -> None: ...

class DriftDetected(_message.Message):
    __slots__ = ("deployment", "version", "signal", "statistics", "window", "reference", "signals", "reason")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    version: str
    signal: str
    statistics: DriftSignal
    window: DriftWindow
    reference: str
    signals: _containers.RepeatedCompositeFieldContainer[DriftSignal]
    reason: str
    def __init__(self, deployment: _Optional[str] = ..., version: _Optional[str] = ..., signal: _Optional[str] = ..., statistics: _Optional[_Union[DriftSignal, _Mapping]] = ..., window: _Optional[_Union[DriftWindow, _Mapping]] = ..., reference: _Optional[str] = ..., signals: _Optional[_Iterable[_Union[DriftSignal, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...

class EventPayload(_message.Message):
    __slots__ = ("job_accepted", "job_started", "baseline_evaluated", "job_progress", "trial_completed", "job_completed", "job_failed", "job_cancelled", "job_interrupted", "gate_evaluated", "job_claimed", "job_retried", "job_lease_renewed", "job_lease_released", "job_cancel_requested", "version_registered", "version_status_changed", "alias_set", "evaluation_recorded", "deployment_created", "routes_set", "experiment_started", "experiment_concluded", "experiment_stopped", "rolled_back", "canary_started", "canary_advanced", "canary_ended", "capture_policy_set", "corpus_registered", "drift_monitor_set", "drift_detected", "evaluator_set", "learning_policy_set", "learning_triggered", "learning_run_ended")
    JOB_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    JOB_STARTED_FIELD_NUMBER: _ClassVar[int]
    BASELINE_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    JOB_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    TRIAL_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    JOB_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    JOB_FAILED_FIELD_NUMBER: _ClassVar[int]
    JOB_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    JOB_INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    GATE_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    JOB_CLAIMED_FIELD_NUMBER: _ClassVar[int]
    JOB_RETRIED_FIELD_NUMBER: _ClassVar[int]
    JOB_LEASE_RENEWED_FIELD_NUMBER: _ClassVar[int]
    JOB_LEASE_RELEASED_FIELD_NUMBER: _ClassVar[int]
    JOB_CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    VERSION_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    VERSION_STATUS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    ALIAS_SET_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_RECORDED_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_CREATED_FIELD_NUMBER: _ClassVar[int]
    ROUTES_SET_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_STARTED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_CONCLUDED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_STOPPED_FIELD_NUMBER: _ClassVar[int]
    ROLLED_BACK_FIELD_NUMBER: _ClassVar[int]
    CANARY_STARTED_FIELD_NUMBER: _ClassVar[int]
    CANARY_ADVANCED_FIELD_NUMBER: _ClassVar[int]
    CANARY_ENDED_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_POLICY_SET_FIELD_NUMBER: _ClassVar[int]
    CORPUS_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    DRIFT_MONITOR_SET_FIELD_NUMBER: _ClassVar[int]
    DRIFT_DETECTED_FIELD_NUMBER: _ClassVar[int]
    EVALUATOR_SET_FIELD_NUMBER: _ClassVar[int]
    LEARNING_POLICY_SET_FIELD_NUMBER: _ClassVar[int]
    LEARNING_TRIGGERED_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RUN_ENDED_FIELD_NUMBER: _ClassVar[int]
    job_accepted: JobAccepted
    job_started: JobStarted
    baseline_evaluated: BaselineEvaluated
    job_progress: JobProgress
    trial_completed: TrialCompleted
    job_completed: JobCompleted
    job_failed: JobFailed
    job_cancelled: JobCancelled
    job_interrupted: JobInterrupted
    gate_evaluated: GateEvaluated
    job_claimed: JobClaimed
    job_retried: JobRetried
    job_lease_renewed: JobLeaseRenewed
    job_lease_released: JobLeaseReleased
    job_cancel_requested: JobCancelRequested
    version_registered: VersionRegistered
    version_status_changed: VersionStatusChanged
    alias_set: AliasSet
    evaluation_recorded: EvaluationRecorded
    deployment_created: DeploymentCreated
    routes_set: RoutesSet
    experiment_started: ExperimentStarted
    experiment_concluded: ExperimentConcluded
    experiment_stopped: ExperimentStopped
    rolled_back: RolledBack
    canary_started: CanaryStarted
    canary_advanced: CanaryAdvanced
    canary_ended: CanaryEnded
    capture_policy_set: CapturePolicySet
    corpus_registered: CorpusRegistered
    drift_monitor_set: DriftMonitorSet
    drift_detected: DriftDetected
    evaluator_set: _evaluators_pb2.EvaluatorSet
    learning_policy_set: _learning_pb2.LearningPolicySet
    learning_triggered: _learning_pb2.LearningTriggered
    learning_run_ended: _learning_pb2.LearningRunEnded
    def __init__(self, job_accepted: _Optional[_Union[JobAccepted, _Mapping]] = ..., job_started: _Optional[_Union[JobStarted, _Mapping]] = ..., baseline_evaluated: _Optional[_Union[BaselineEvaluated, _Mapping]] = ..., job_progress: _Optional[_Union[JobProgress, _Mapping]] = ..., trial_completed: _Optional[_Union[TrialCompleted, _Mapping]] = ..., job_completed: _Optional[_Union[JobCompleted, _Mapping]] = ..., job_failed: _Optional[_Union[JobFailed, _Mapping]] = ..., job_cancelled: _Optional[_Union[JobCancelled, _Mapping]] = ..., job_interrupted: _Optional[_Union[JobInterrupted, _Mapping]] = ..., gate_evaluated: _Optional[_Union[GateEvaluated, _Mapping]] = ..., job_claimed: _Optional[_Union[JobClaimed, _Mapping]] = ..., job_retried: _Optional[_Union[JobRetried, _Mapping]] = ..., job_lease_renewed: _Optional[_Union[JobLeaseRenewed, _Mapping]] = ..., job_lease_released: _Optional[_Union[JobLeaseReleased, _Mapping]] = ..., job_cancel_requested: _Optional[_Union[JobCancelRequested, _Mapping]] = ..., version_registered: _Optional[_Union[VersionRegistered, _Mapping]] = ..., version_status_changed: _Optional[_Union[VersionStatusChanged, _Mapping]] = ..., alias_set: _Optional[_Union[AliasSet, _Mapping]] = ..., evaluation_recorded: _Optional[_Union[EvaluationRecorded, _Mapping]] = ..., deployment_created: _Optional[_Union[DeploymentCreated, _Mapping]] = ..., routes_set: _Optional[_Union[RoutesSet, _Mapping]] = ..., experiment_started: _Optional[_Union[ExperimentStarted, _Mapping]] = ..., experiment_concluded: _Optional[_Union[ExperimentConcluded, _Mapping]] = ..., experiment_stopped: _Optional[_Union[ExperimentStopped, _Mapping]] = ..., rolled_back: _Optional[_Union[RolledBack, _Mapping]] = ..., canary_started: _Optional[_Union[CanaryStarted, _Mapping]] = ..., canary_advanced: _Optional[_Union[CanaryAdvanced, _Mapping]] = ..., canary_ended: _Optional[_Union[CanaryEnded, _Mapping]] = ..., capture_policy_set: _Optional[_Union[CapturePolicySet, _Mapping]] = ..., corpus_registered: _Optional[_Union[CorpusRegistered, _Mapping]] = ..., drift_monitor_set: _Optional[_Union[DriftMonitorSet, _Mapping]] = ..., drift_detected: _Optional[_Union[DriftDetected, _Mapping]] = ..., evaluator_set: _Optional[_Union[_evaluators_pb2.EvaluatorSet, _Mapping]] = ..., learning_policy_set: _Optional[_Union[_learning_pb2.LearningPolicySet, _Mapping]] = ..., learning_triggered: _Optional[_Union[_learning_pb2.LearningTriggered, _Mapping]] = ..., learning_run_ended: _Optional[_Union[_learning_pb2.LearningRunEnded, _Mapping]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("position", "stream", "version", "event_id", "type", "recorded_at", "hash", "payload", "raw_payload", "actor", "chain")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    RAW_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    position: int
    stream: str
    version: int
    event_id: str
    type: str
    recorded_at: _timestamp_pb2.Timestamp
    hash: bytes
    payload: EventPayload
    raw_payload: bytes
    actor: str
    chain: int
    def __init__(self, position: _Optional[int] = ..., stream: _Optional[str] = ..., version: _Optional[int] = ..., event_id: _Optional[str] = ..., type: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hash: _Optional[bytes] = ..., payload: _Optional[_Union[EventPayload, _Mapping]] = ..., raw_payload: _Optional[bytes] = ..., actor: _Optional[str] = ..., chain: _Optional[int] = ...) -> None: ...
