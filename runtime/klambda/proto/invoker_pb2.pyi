from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InvocationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_RESPONSE: _ClassVar[InvocationType]
    EVENT: _ClassVar[InvocationType]
    DRY_RUN: _ClassVar[InvocationType]
REQUEST_RESPONSE: InvocationType
EVENT: InvocationType
DRY_RUN: InvocationType

class InvokeRequest(_message.Message):
    __slots__ = ("function_name", "qualifier", "invocation_type", "payload", "log_tail")
    FUNCTION_NAME_FIELD_NUMBER: _ClassVar[int]
    QUALIFIER_FIELD_NUMBER: _ClassVar[int]
    INVOCATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    function_name: str
    qualifier: str
    invocation_type: InvocationType
    payload: bytes
    log_tail: bool
    def __init__(self, function_name: _Optional[str] = ..., qualifier: _Optional[str] = ..., invocation_type: _Optional[_Union[InvocationType, str]] = ..., payload: _Optional[bytes] = ..., log_tail: _Optional[bool] = ...) -> None: ...

class InvokeResponse(_message.Message):
    __slots__ = ("status_code", "payload", "function_error", "executed_version", "log_result", "request_id")
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_ERROR_FIELD_NUMBER: _ClassVar[int]
    EXECUTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOG_RESULT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    status_code: int
    payload: bytes
    function_error: str
    executed_version: str
    log_result: str
    request_id: str
    def __init__(self, status_code: _Optional[int] = ..., payload: _Optional[bytes] = ..., function_error: _Optional[str] = ..., executed_version: _Optional[str] = ..., log_result: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...
