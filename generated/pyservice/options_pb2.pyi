import datetime

from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
METHOD_FIELD_NUMBER: _ClassVar[int]
method: _descriptor.FieldDescriptor
SERVICE_FIELD_NUMBER: _ClassVar[int]
service: _descriptor.FieldDescriptor

class MethodOptions(_message.Message):
    __slots__ = ("timeout", "skip_validation", "public", "retryable", "roles")
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    SKIP_VALIDATION_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    timeout: _duration_pb2.Duration
    skip_validation: bool
    public: bool
    retryable: bool
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., skip_validation: _Optional[bool] = ..., public: _Optional[bool] = ..., retryable: _Optional[bool] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...

class ServiceOptions(_message.Message):
    __slots__ = ("timeout", "skip_validation")
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    SKIP_VALIDATION_FIELD_NUMBER: _ClassVar[int]
    timeout: _duration_pb2.Duration
    skip_validation: bool
    def __init__(self, timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., skip_validation: _Optional[bool] = ...) -> None: ...
