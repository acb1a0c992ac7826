import datetime

from dspyops.proto import events_pb2 as _events_pb2
from dspyops.proto import common_pb2 as _common_pb2
from dspyops.proto import learning_pb2 as _learning_pb2
from dspyops.proto import evaluators_pb2 as _evaluators_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    QUEUED: _ClassVar[JobState]
    RUNNING: _ClassVar[JobState]
    SUCCEEDED: _ClassVar[JobState]
    FAILED: _ClassVar[JobState]
    CANCELLED: _ClassVar[JobState]
    INTERRUPTED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
QUEUED: JobState
RUNNING: JobState
SUCCEEDED: JobState
FAILED: JobState
CANCELLED: JobState
INTERRUPTED: JobState

class StartOptimizationRequest(_message.Message):
    __slots__ = ("program", "spec", "lm", "optimizer", "params", "metric", "trainset", "valset", "min_score", "auto_promote", "prompt_lm", "preset", "must_beat", "min_improvement", "budget", "trainset_ref", "valset_ref", "val_fraction", "split_seed", "request_id", "max_attempts", "base_trainset_job", "learning")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    TRAINSET_FIELD_NUMBER: _ClassVar[int]
    VALSET_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    AUTO_PROMOTE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_LM_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    MUST_BEAT_FIELD_NUMBER: _ClassVar[int]
    MIN_IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    TRAINSET_REF_FIELD_NUMBER: _ClassVar[int]
    VALSET_REF_FIELD_NUMBER: _ClassVar[int]
    VAL_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SPLIT_SEED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    BASE_TRAINSET_JOB_FIELD_NUMBER: _ClassVar[int]
    LEARNING_FIELD_NUMBER: _ClassVar[int]
    program: str
    spec: _events_pb2.ProgramSpec
    lm: _events_pb2.LMConfig
    optimizer: str
    params: _struct_pb2.Struct
    metric: str
    trainset: _containers.RepeatedCompositeFieldContainer[_events_pb2.Example]
    valset: _containers.RepeatedCompositeFieldContainer[_events_pb2.Example]
    min_score: float
    auto_promote: bool
    prompt_lm: _events_pb2.LMConfig
    preset: str
    must_beat: str
    min_improvement: float
    budget: _common_pb2.Budget
    trainset_ref: DatasetRef
    valset_ref: DatasetRef
    val_fraction: float
    split_seed: int
    request_id: str
    max_attempts: int
    base_trainset_job: str
    learning: _learning_pb2.JobLearning
    def __init__(self, program: _Optional[str] = ..., spec: _Optional[_Union[_events_pb2.ProgramSpec, _Mapping]] = ..., lm: _Optional[_Union[_events_pb2.LMConfig, _Mapping]] = ..., optimizer: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metric: _Optional[str] = ..., trainset: _Optional[_Iterable[_Union[_events_pb2.Example, _Mapping]]] = ..., valset: _Optional[_Iterable[_Union[_events_pb2.Example, _Mapping]]] = ..., min_score: _Optional[float] = ..., auto_promote: _Optional[bool] = ..., prompt_lm: _Optional[_Union[_events_pb2.LMConfig, _Mapping]] = ..., preset: _Optional[str] = ..., must_beat: _Optional[str] = ..., min_improvement: _Optional[float] = ..., budget: _Optional[_Union[_common_pb2.Budget, _Mapping]] = ..., trainset_ref: _Optional[_Union[DatasetRef, _Mapping]] = ..., valset_ref: _Optional[_Union[DatasetRef, _Mapping]] = ..., val_fraction: _Optional[float] = ..., split_seed: _Optional[int] = ..., request_id: _Optional[str] = ..., max_attempts: _Optional[int] = ..., base_trainset_job: _Optional[str] = ..., learning: _Optional[_Union[_learning_pb2.JobLearning, _Mapping]] = ...) -> None: ...

class DatasetRef(_message.Message):
    __slots__ = ("path", "input_keys")
    PATH_FIELD_NUMBER: _ClassVar[int]
    INPUT_KEYS_FIELD_NUMBER: _ClassVar[int]
    path: str
    input_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, path: _Optional[str] = ..., input_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class OptimizationEvent(_message.Message):
    __slots__ = ("job_id", "sequence", "at", "stream_version", "accepted", "started", "baseline", "progress", "trial", "completed", "failed", "cancelled", "interrupted", "gate", "claimed", "retried", "cancel_requested")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    STREAM_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    sequence: int
    at: _timestamp_pb2.Timestamp
    stream_version: int
    accepted: _events_pb2.JobAccepted
    started: _events_pb2.JobStarted
    baseline: _events_pb2.BaselineEvaluated
    progress: _events_pb2.JobProgress
    trial: _events_pb2.TrialCompleted
    completed: _events_pb2.JobCompleted
    failed: _events_pb2.JobFailed
    cancelled: _events_pb2.JobCancelled
    interrupted: _events_pb2.JobInterrupted
    gate: _events_pb2.GateEvaluated
    claimed: _events_pb2.JobClaimed
    retried: _events_pb2.JobRetried
    cancel_requested: _events_pb2.JobCancelRequested
    def __init__(self, job_id: _Optional[str] = ..., sequence: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stream_version: _Optional[int] = ..., accepted: _Optional[_Union[_events_pb2.JobAccepted, _Mapping]] = ..., started: _Optional[_Union[_events_pb2.JobStarted, _Mapping]] = ..., baseline: _Optional[_Union[_events_pb2.BaselineEvaluated, _Mapping]] = ..., progress: _Optional[_Union[_events_pb2.JobProgress, _Mapping]] = ..., trial: _Optional[_Union[_events_pb2.TrialCompleted, _Mapping]] = ..., completed: _Optional[_Union[_events_pb2.JobCompleted, _Mapping]] = ..., failed: _Optional[_Union[_events_pb2.JobFailed, _Mapping]] = ..., cancelled: _Optional[_Union[_events_pb2.JobCancelled, _Mapping]] = ..., interrupted: _Optional[_Union[_events_pb2.JobInterrupted, _Mapping]] = ..., gate: _Optional[_Union[_events_pb2.GateEvaluated, _Mapping]] = ..., claimed: _Optional[_Union[_events_pb2.JobClaimed, _Mapping]] = ..., retried: _Optional[_Union[_events_pb2.JobRetried, _Mapping]] = ..., cancel_requested: _Optional[_Union[_events_pb2.JobCancelRequested, _Mapping]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_sequence", "after_stream_version")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AFTER_STREAM_VERSION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_sequence: int
    after_stream_version: int
    def __init__(self, job_id: _Optional[str] = ..., after_sequence: _Optional[int] = ..., after_stream_version: _Optional[int] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "program", "optimizer", "state", "baseline_score", "final_score", "best_score", "trials", "version", "error", "created_at", "last_sequence", "owner", "attempt", "max_attempts", "lm_calls", "wall_seconds")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SCORE_FIELD_NUMBER: _ClassVar[int]
    FINAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    BEST_SCORE_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LM_CALLS_FIELD_NUMBER: _ClassVar[int]
    WALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    program: str
    optimizer: str
    state: JobState
    baseline_score: float
    final_score: float
    best_score: float
    trials: int
    version: str
    error: str
    created_at: _timestamp_pb2.Timestamp
    last_sequence: int
    owner: str
    attempt: int
    max_attempts: int
    lm_calls: int
    wall_seconds: float
    def __init__(self, job_id: _Optional[str] = ..., program: _Optional[str] = ..., optimizer: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., baseline_score: _Optional[float] = ..., final_score: _Optional[float] = ..., best_score: _Optional[float] = ..., trials: _Optional[int] = ..., version: _Optional[str] = ..., error: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_sequence: _Optional[int] = ..., owner: _Optional[str] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., lm_calls: _Optional[int] = ..., wall_seconds: _Optional[float] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: str
    def __init__(self, program: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class ListOptimizersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OptimizerParam(_message.Message):
    __slots__ = ("name", "type", "default", "minimum", "maximum", "choices", "nullable", "doc", "allowed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    NULLABLE_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    default: _struct_pb2.Value
    minimum: float
    maximum: float
    choices: _containers.RepeatedScalarFieldContainer[str]
    nullable: bool
    doc: str
    allowed: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., default: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., choices: _Optional[_Iterable[str]] = ..., nullable: _Optional[bool] = ..., doc: _Optional[str] = ..., allowed: _Optional[str] = ...) -> None: ...

class OptimizerInfo(_message.Message):
    __slots__ = ("name", "doc", "params", "needs_valset", "needs_teacher", "uses_prompt_lm", "prompt_lm_role", "rules")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    NEEDS_VALSET_FIELD_NUMBER: _ClassVar[int]
    NEEDS_TEACHER_FIELD_NUMBER: _ClassVar[int]
    USES_PROMPT_LM_FIELD_NUMBER: _ClassVar[int]
    PROMPT_LM_ROLE_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    name: str
    doc: str
    params: _containers.RepeatedCompositeFieldContainer[OptimizerParam]
    needs_valset: bool
    needs_teacher: bool
    uses_prompt_lm: bool
    prompt_lm_role: str
    rules: str
    def __init__(self, name: _Optional[str] = ..., doc: _Optional[str] = ..., params: _Optional[_Iterable[_Union[OptimizerParam, _Mapping]]] = ..., needs_valset: _Optional[bool] = ..., needs_teacher: _Optional[bool] = ..., uses_prompt_lm: _Optional[bool] = ..., prompt_lm_role: _Optional[str] = ..., rules: _Optional[str] = ...) -> None: ...

class OptimizerPreset(_message.Message):
    __slots__ = ("name", "optimizer", "params", "doc")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    name: str
    optimizer: str
    params: _struct_pb2.Struct
    doc: str
    def __init__(self, name: _Optional[str] = ..., optimizer: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., doc: _Optional[str] = ...) -> None: ...

class ListOptimizersResponse(_message.Message):
    __slots__ = ("optimizers", "presets")
    OPTIMIZERS_FIELD_NUMBER: _ClassVar[int]
    PRESETS_FIELD_NUMBER: _ClassVar[int]
    optimizers: _containers.RepeatedCompositeFieldContainer[OptimizerInfo]
    presets: _containers.RepeatedCompositeFieldContainer[OptimizerPreset]
    def __init__(self, optimizers: _Optional[_Iterable[_Union[OptimizerInfo, _Mapping]]] = ..., presets: _Optional[_Iterable[_Union[OptimizerPreset, _Mapping]]] = ...) -> None: ...

class ProgramVersion(_message.Message):
    __slots__ = ("program", "version", "status", "spec", "lm", "artifact_digest", "lineage", "aliases", "registered_position", "registered_at")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_POSITION_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    program: str
    version: str
    status: _events_pb2.VersionStatus
    spec: _events_pb2.ProgramSpec
    lm: _events_pb2.LMConfig
    artifact_digest: str
    lineage: _events_pb2.Lineage
    aliases: _containers.RepeatedScalarFieldContainer[str]
    registered_position: int
    registered_at: _timestamp_pb2.Timestamp
    def __init__(self, program: _Optional[str] = ..., version: _Optional[str] = ..., status: _Optional[_Union[_events_pb2.VersionStatus, str]] = ..., spec: _Optional[_Union[_events_pb2.ProgramSpec, _Mapping]] = ..., lm: _Optional[_Union[_events_pb2.LMConfig, _Mapping]] = ..., artifact_digest: _Optional[str] = ..., lineage: _Optional[_Union[_events_pb2.Lineage, _Mapping]] = ..., aliases: _Optional[_Iterable[str]] = ..., registered_position: _Optional[int] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProgramInfo(_message.Message):
    __slots__ = ("program", "versions", "aliases", "production_version")
    class AliasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    PRODUCTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    program: str
    versions: _containers.RepeatedScalarFieldContainer[str]
    aliases: _containers.ScalarMap[str, str]
    production_version: str
    def __init__(self, program: _Optional[str] = ..., versions: _Optional[_Iterable[str]] = ..., aliases: _Optional[_Mapping[str, str]] = ..., production_version: _Optional[str] = ...) -> None: ...

class ListProgramsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProgramsResponse(_message.Message):
    __slots__ = ("programs",)
    PROGRAMS_FIELD_NUMBER: _ClassVar[int]
    programs: _containers.RepeatedCompositeFieldContainer[ProgramInfo]
    def __init__(self, programs: _Optional[_Iterable[_Union[ProgramInfo, _Mapping]]] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: str
    def __init__(self, program: _Optional[str] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[ProgramVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[ProgramVersion, _Mapping]]] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("program", "version")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    program: str
    version: str
    def __init__(self, program: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class SetVersionStatusRequest(_message.Message):
    __slots__ = ("program", "version", "status", "reason", "request_id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    program: str
    version: str
    status: _events_pb2.VersionStatus
    reason: str
    request_id: str
    def __init__(self, program: _Optional[str] = ..., version: _Optional[str] = ..., status: _Optional[_Union[_events_pb2.VersionStatus, str]] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class SetAliasRequest(_message.Message):
    __slots__ = ("program", "alias", "version", "request_id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    program: str
    alias: str
    version: str
    request_id: str
    def __init__(self, program: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("deployment", "program", "routes", "stream_version", "log_position", "capture")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    STREAM_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    program: str
    routes: _containers.RepeatedCompositeFieldContainer[_events_pb2.Route]
    stream_version: int
    log_position: int
    capture: _events_pb2.CapturePolicy
    def __init__(self, deployment: _Optional[str] = ..., program: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[_events_pb2.Route, _Mapping]]] = ..., stream_version: _Optional[int] = ..., log_position: _Optional[int] = ..., capture: _Optional[_Union[_events_pb2.CapturePolicy, _Mapping]] = ...) -> None: ...

class CreateDeploymentRequest(_message.Message):
    __slots__ = ("deployment", "program", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    program: str
    request_id: str
    def __init__(self, deployment: _Optional[str] = ..., program: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class SetRoutesRequest(_message.Message):
    __slots__ = ("deployment", "routes", "expected_version", "reason", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    routes: _containers.RepeatedCompositeFieldContainer[_events_pb2.Route]
    expected_version: int
    reason: str
    request_id: str
    def __init__(self, deployment: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[_events_pb2.Route, _Mapping]]] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetDeploymentRequest(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    def __init__(self, deployment: _Optional[str] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("deployments",)
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    def __init__(self, deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ...) -> None: ...

class RegisterCorpusRequest(_message.Message):
    __slots__ = ("corpus", "documents", "source", "text_field", "id_field", "request_id")
    CORPUS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    corpus: str
    documents: _containers.RepeatedCompositeFieldContainer[_events_pb2.Document]
    source: DatasetRef
    text_field: str
    id_field: str
    request_id: str
    def __init__(self, corpus: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[_events_pb2.Document, _Mapping]]] = ..., source: _Optional[_Union[DatasetRef, _Mapping]] = ..., text_field: _Optional[str] = ..., id_field: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class Corpus(_message.Message):
    __slots__ = ("corpus", "digest", "count", "registered_position")
    CORPUS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_POSITION_FIELD_NUMBER: _ClassVar[int]
    corpus: str
    digest: str
    count: int
    registered_position: int
    def __init__(self, corpus: _Optional[str] = ..., digest: _Optional[str] = ..., count: _Optional[int] = ..., registered_position: _Optional[int] = ...) -> None: ...

class ListCorporaRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCorporaResponse(_message.Message):
    __slots__ = ("corpora",)
    CORPORA_FIELD_NUMBER: _ClassVar[int]
    corpora: _containers.RepeatedCompositeFieldContainer[Corpus]
    def __init__(self, corpora: _Optional[_Iterable[_Union[Corpus, _Mapping]]] = ...) -> None: ...

class SetCapturePolicyRequest(_message.Message):
    __slots__ = ("deployment", "policy", "reason", "expected_version", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    policy: _events_pb2.CapturePolicy
    reason: str
    expected_version: int
    request_id: str
    def __init__(self, deployment: _Optional[str] = ..., policy: _Optional[_Union[_events_pb2.CapturePolicy, _Mapping]] = ..., reason: _Optional[str] = ..., expected_version: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class ReadLogRequest(_message.Message):
    __slots__ = ("after", "limit", "stream_prefix", "types", "actor", "since", "until")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STREAM_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    after: int
    limit: int
    stream_prefix: str
    types: _containers.RepeatedScalarFieldContainer[str]
    actor: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, after: _Optional[int] = ..., limit: _Optional[int] = ..., stream_prefix: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., actor: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReadLogResponse(_message.Message):
    __slots__ = ("events", "head", "scanned_to")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    SCANNED_TO_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_events_pb2.Event]
    head: int
    scanned_to: int
    def __init__(self, events: _Optional[_Iterable[_Union[_events_pb2.Event, _Mapping]]] = ..., head: _Optional[int] = ..., scanned_to: _Optional[int] = ...) -> None: ...

class SubscribeLogRequest(_message.Message):
    __slots__ = ("after", "stream_prefix", "types", "actor", "since", "until")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    STREAM_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    after: int
    stream_prefix: str
    types: _containers.RepeatedScalarFieldContainer[str]
    actor: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, after: _Optional[int] = ..., stream_prefix: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., actor: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VerifyLogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyLogResponse(_message.Message):
    __slots__ = ("ok", "checked", "first_broken_position", "reason", "v1_links", "v2_links", "keyed_links")
    OK_FIELD_NUMBER: _ClassVar[int]
    CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_BROKEN_POSITION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    V1_LINKS_FIELD_NUMBER: _ClassVar[int]
    V2_LINKS_FIELD_NUMBER: _ClassVar[int]
    KEYED_LINKS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    checked: int
    first_broken_position: int
    reason: str
    v1_links: int
    v2_links: int
    keyed_links: int
    def __init__(self, ok: _Optional[bool] = ..., checked: _Optional[int] = ..., first_broken_position: _Optional[int] = ..., reason: _Optional[str] = ..., v1_links: _Optional[int] = ..., v2_links: _Optional[int] = ..., keyed_links: _Optional[int] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("program", "version", "spec", "state_json", "lm", "dataset", "dataset_ref", "metric", "num_threads", "include_results")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_JSON_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DATASET_REF_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    NUM_THREADS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RESULTS_FIELD_NUMBER: _ClassVar[int]
    program: str
    version: str
    spec: _events_pb2.ProgramSpec
    state_json: bytes
    lm: _events_pb2.LMConfig
    dataset: _containers.RepeatedCompositeFieldContainer[_events_pb2.Example]
    dataset_ref: DatasetRef
    metric: str
    num_threads: int
    include_results: bool
    def __init__(self, program: _Optional[str] = ..., version: _Optional[str] = ..., spec: _Optional[_Union[_events_pb2.ProgramSpec, _Mapping]] = ..., state_json: _Optional[bytes] = ..., lm: _Optional[_Union[_events_pb2.LMConfig, _Mapping]] = ..., dataset: _Optional[_Iterable[_Union[_events_pb2.Example, _Mapping]]] = ..., dataset_ref: _Optional[_Union[DatasetRef, _Mapping]] = ..., metric: _Optional[str] = ..., num_threads: _Optional[int] = ..., include_results: _Optional[bool] = ...) -> None: ...

class EvaluationProgress(_message.Message):
    __slots__ = ("done", "total", "running_score")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    RUNNING_SCORE_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    running_score: float
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ..., running_score: _Optional[float] = ...) -> None: ...

class EvaluationEvent(_message.Message):
    __slots__ = ("progress", "report")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    progress: EvaluationProgress
    report: _events_pb2.EvaluationReport
    def __init__(self, progress: _Optional[_Union[EvaluationProgress, _Mapping]] = ..., report: _Optional[_Union[_events_pb2.EvaluationReport, _Mapping]] = ...) -> None: ...

class CompareVersionsRequest(_message.Message):
    __slots__ = ("program", "a", "b", "dataset", "dataset_ref", "metric")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DATASET_REF_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    program: str
    a: str
    b: str
    dataset: _containers.RepeatedCompositeFieldContainer[_events_pb2.Example]
    dataset_ref: DatasetRef
    metric: str
    def __init__(self, program: _Optional[str] = ..., a: _Optional[str] = ..., b: _Optional[str] = ..., dataset: _Optional[_Iterable[_Union[_events_pb2.Example, _Mapping]]] = ..., dataset_ref: _Optional[_Union[DatasetRef, _Mapping]] = ..., metric: _Optional[str] = ...) -> None: ...

class VersionComparison(_message.Message):
    __slots__ = ("a", "b", "examples", "score_a", "score_b", "test", "p_value", "a_only", "b_only", "verdict")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    SCORE_A_FIELD_NUMBER: _ClassVar[int]
    SCORE_B_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    A_ONLY_FIELD_NUMBER: _ClassVar[int]
    B_ONLY_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    a: str
    b: str
    examples: int
    score_a: float
    score_b: float
    test: str
    p_value: float
    a_only: int
    b_only: int
    verdict: str
    def __init__(self, a: _Optional[str] = ..., b: _Optional[str] = ..., examples: _Optional[int] = ..., score_a: _Optional[float] = ..., score_b: _Optional[float] = ..., test: _Optional[str] = ..., p_value: _Optional[float] = ..., a_only: _Optional[int] = ..., b_only: _Optional[int] = ..., verdict: _Optional[str] = ...) -> None: ...

class ImportProgramRequest(_message.Message):
    __slots__ = ("program", "spec", "state_json", "lm", "request_id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_JSON_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    program: str
    spec: _events_pb2.ProgramSpec
    state_json: bytes
    lm: _events_pb2.LMConfig
    request_id: str
    def __init__(self, program: _Optional[str] = ..., spec: _Optional[_Union[_events_pb2.ProgramSpec, _Mapping]] = ..., state_json: _Optional[bytes] = ..., lm: _Optional[_Union[_events_pb2.LMConfig, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ExportVersionRequest(_message.Message):
    __slots__ = ("program", "version")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    program: str
    version: str
    def __init__(self, program: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ExportVersionResponse(_message.Message):
    __slots__ = ("spec", "state_json", "lm", "artifact_digest")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_JSON_FIELD_NUMBER: _ClassVar[int]
    LM_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    spec: _events_pb2.ProgramSpec
    state_json: bytes
    lm: _events_pb2.LMConfig
    artifact_digest: str
    def __init__(self, spec: _Optional[_Union[_events_pb2.ProgramSpec, _Mapping]] = ..., state_json: _Optional[bytes] = ..., lm: _Optional[_Union[_events_pb2.LMConfig, _Mapping]] = ..., artifact_digest: _Optional[str] = ...) -> None: ...
