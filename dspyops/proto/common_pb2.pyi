from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RequestOrigin(_message.Message):
    __slots__ = ("request_id", "method", "request_sha256")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    method: str
    request_sha256: str
    def __init__(self, request_id: _Optional[str] = ..., method: _Optional[str] = ..., request_sha256: _Optional[str] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("timeout_seconds", "max_lm_calls", "max_tokens", "max_cost_usd")
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_LM_CALLS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    timeout_seconds: float
    max_lm_calls: int
    max_tokens: int
    max_cost_usd: float
    def __init__(self, timeout_seconds: _Optional[float] = ..., max_lm_calls: _Optional[int] = ..., max_tokens: _Optional[int] = ..., max_cost_usd: _Optional[float] = ...) -> None: ...
