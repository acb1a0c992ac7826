from dspyops.proto import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRequest(_message.Message):
    __slots__ = ("deployment", "inputs", "routing_key")
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
    deployment: str
    inputs: _containers.ScalarMap[str, str]
    routing_key: str
    def __init__(self, deployment: _Optional[str] = ..., inputs: _Optional[_Mapping[str, str]] = ..., routing_key: _Optional[str] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("outputs", "program", "version", "prediction_id", "log_position", "latency_ms", "bucket")
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
    outputs: _containers.ScalarMap[str, str]
    program: str
    version: str
    prediction_id: str
    log_position: int
    latency_ms: float
    bucket: int
    def __init__(self, outputs: _Optional[_Mapping[str, str]] = ..., program: _Optional[str] = ..., version: _Optional[str] = ..., prediction_id: _Optional[str] = ..., log_position: _Optional[int] = ..., latency_ms: _Optional[float] = ..., bucket: _Optional[int] = ...) -> None: ...

class GetDeploymentStateRequest(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    def __init__(self, deployment: _Optional[str] = ...) -> None: ...

class DeploymentState(_message.Message):
    __slots__ = ("deployment", "program", "routes", "log_position", "state_hash", "changed_at_position")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    STATE_HASH_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_POSITION_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    program: str
    routes: _containers.RepeatedCompositeFieldContainer[_events_pb2.Route]
    log_position: int
    state_hash: str
    changed_at_position: int
    def __init__(self, deployment: _Optional[str] = ..., program: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[_events_pb2.Route, _Mapping]]] = ..., log_position: _Optional[int] = ..., state_hash: _Optional[str] = ..., changed_at_position: _Optional[int] = ...) -> None: ...

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
