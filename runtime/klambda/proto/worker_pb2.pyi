from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerInvokeRequest(_message.Message):
    __slots__ = ("request_id", "payload", "invoked_arn", "log_tail", "trace_id", "phases_ms")
    class PhasesMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    INVOKED_ARN_FIELD_NUMBER: _ClassVar[int]
    LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    PHASES_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    payload: bytes
    invoked_arn: str
    log_tail: bool
    trace_id: str
    phases_ms: _containers.ScalarMap[str, float]
    def __init__(self, request_id: _Optional[str] = ..., payload: _Optional[bytes] = ..., invoked_arn: _Optional[str] = ..., log_tail: _Optional[bool] = ..., trace_id: _Optional[str] = ..., phases_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class WorkerInvokeResponse(_message.Message):
    __slots__ = ("status", "body", "version", "duration_ms", "max_memory_mb", "cold_start", "init_ms", "error_type", "log_tail", "provisioned", "phases_ms")
    class PhasesMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
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
    PHASES_MS_FIELD_NUMBER: _ClassVar[int]
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
    phases_ms: _containers.ScalarMap[str, float]
    def __init__(self, status: _Optional[str] = ..., body: _Optional[bytes] = ..., version: _Optional[str] = ..., duration_ms: _Optional[float] = ..., max_memory_mb: _Optional[int] = ..., cold_start: _Optional[bool] = ..., init_ms: _Optional[float] = ..., error_type: _Optional[str] = ..., log_tail: _Optional[_Iterable[str]] = ..., provisioned: _Optional[bool] = ..., phases_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class StreamStart(_message.Message):
    __slots__ = ("content_type", "version")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    version: str
    def __init__(self, content_type: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class WorkerStreamEvent(_message.Message):
    __slots__ = ("start", "chunk", "outcome")
    START_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    start: StreamStart
    chunk: bytes
    outcome: WorkerInvokeResponse
    def __init__(self, start: _Optional[_Union[StreamStart, _Mapping]] = ..., chunk: _Optional[bytes] = ..., outcome: _Optional[_Union[WorkerInvokeResponse, _Mapping]] = ...) -> None: ...

class CodeFile(_message.Message):
    __slots__ = ("path", "content")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    path: str
    content: bytes
    def __init__(self, path: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class SpecialiseRequest(_message.Message):
    __slots__ = ("function", "version", "handler", "runtime", "memory_mb", "timeout_seconds", "environment", "code_sha256", "region", "account", "files", "code_object", "layer_objects")
    class EnvironmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CODE_SHA256_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    CODE_OBJECT_FIELD_NUMBER: _ClassVar[int]
    LAYER_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    function: str
    version: str
    handler: str
    runtime: str
    memory_mb: int
    timeout_seconds: int
    environment: _containers.ScalarMap[str, str]
    code_sha256: str
    region: str
    account: str
    files: _containers.RepeatedCompositeFieldContainer[CodeFile]
    code_object: str
    layer_objects: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, function: _Optional[str] = ..., version: _Optional[str] = ..., handler: _Optional[str] = ..., runtime: _Optional[str] = ..., memory_mb: _Optional[int] = ..., timeout_seconds: _Optional[int] = ..., environment: _Optional[_Mapping[str, str]] = ..., code_sha256: _Optional[str] = ..., region: _Optional[str] = ..., account: _Optional[str] = ..., files: _Optional[_Iterable[_Union[CodeFile, _Mapping]]] = ..., code_object: _Optional[str] = ..., layer_objects: _Optional[_Iterable[str]] = ...) -> None: ...

class SpecialiseResponse(_message.Message):
    __slots__ = ("code_root", "unpack_ms")
    CODE_ROOT_FIELD_NUMBER: _ClassVar[int]
    UNPACK_MS_FIELD_NUMBER: _ClassVar[int]
    code_root: str
    unpack_ms: float
    def __init__(self, code_root: _Optional[str] = ..., unpack_ms: _Optional[float] = ...) -> None: ...
