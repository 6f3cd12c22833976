from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerInvokeRequest(_message.Message):
    __slots__ = ("request_id", "payload", "invoked_arn", "log_tail", "trace_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    INVOKED_ARN_FIELD_NUMBER: _ClassVar[int]
    LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    payload: bytes
    invoked_arn: str
    log_tail: bool
    trace_id: str
    def __init__(self, request_id: _Optional[str] = ..., payload: _Optional[bytes] = ..., invoked_arn: _Optional[str] = ..., log_tail: _Optional[bool] = ..., trace_id: _Optional[str] = ...) -> None: ...

class WorkerInvokeResponse(_message.Message):
    __slots__ = ("status", "body", "version", "duration_ms", "max_memory_mb", "cold_start", "init_ms", "error_type", "log_tail", "provisioned")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    COLD_START_FIELD_NUMBER: _ClassVar[int]
    INIT_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    PROVISIONED_FIELD_NUMBER: _ClassVar[int]
    status: str
    body: bytes
    version: str
    duration_ms: float
    max_memory_mb: int
    cold_start: bool
    init_ms: float
    error_type: str
    log_tail: _containers.RepeatedScalarFieldContainer[str]
    provisioned: bool
    def __init__(self, status: _Optional[str] = ..., body: _Optional[bytes] = ..., version: _Optional[str] = ..., duration_ms: _Optional[float] = ..., max_memory_mb: _Optional[int] = ..., cold_start: _Optional[bool] = ..., init_ms: _Optional[float] = ..., error_type: _Optional[str] = ..., log_tail: _Optional[_Iterable[str]] = ..., provisioned: _Optional[bool] = ...) -> None: ...
