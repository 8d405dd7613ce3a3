"""The typed model the templates receive: plain frozen data, no descriptors, no code text.

Nodes are NamedTuples rather than frozen dataclasses: a plugin process is short-lived, and
defining twenty dataclasses costs it some 12 ms at import, a fifth of its work.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from protoc_gen_pyservice.model.families import FieldRules
    from protoc_gen_pyservice.model.protovalidate import MessageRules, ValueRules


class Kind(enum.Enum):
    """How requests and responses flow in an RPC; values name the runtime's adapters."""

    UNARY_UNARY = "unary_unary"
    UNARY_STREAM = "unary_stream"
    STREAM_UNARY = "stream_unary"
    STREAM_STREAM = "stream_stream"

    @property
    def client_streaming(self) -> bool:
        return self in (Kind.STREAM_UNARY, Kind.STREAM_STREAM)

    @property
    def server_streaming(self) -> bool:
        return self in (Kind.UNARY_STREAM, Kind.STREAM_STREAM)


class Doc(NamedTuple):
    """A proto comment, split into lines with the comment markers already removed."""

    lines: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.lines)


class TypeRef(NamedTuple):
    """A message or enum as Python sees it: `qualname` inside `module`."""

    proto_name: str  # full proto name without the leading dot: user.v1.UserUpdate.UpdateType
    module: str  # the _pb2 module that defines it: user.v1.user_pb2
    qualname: str  # the attribute path inside that module: UserUpdate.UpdateType
    proto_file: str = ""  # the .proto file that defines it: user/v1/user.proto


class FieldType(enum.Enum):
    DOUBLE = "double"
    FLOAT = "float"
    INT64 = "int64"
    UINT64 = "uint64"
    INT32 = "int32"
    FIXED64 = "fixed64"
    FIXED32 = "fixed32"
    BOOL = "bool"
    STRING = "string"
    GROUP = "group"
    MESSAGE = "message"
    BYTES = "bytes"
    UINT32 = "uint32"
    ENUM = "enum"
    SFIXED32 = "sfixed32"
    SFIXED64 = "sfixed64"
    SINT32 = "sint32"
    SINT64 = "sint64"


class Field(NamedTuple):
    name: str  # as in the proto, which is also protoc's Python attribute name
    number: int
    type: FieldType
    type_ref: TypeRef | None  # messages and enums
    repeated: bool
    map_entry: MapEntry | None
    oneof: str | None  # the real (non-synthetic) oneof this field belongs to
    proto3_optional: bool  # declared `optional` in proto3: the one member of a synthetic oneof
    # HasField works: messages, proto3 optional, oneof members, proto2 and editions' explicit.
    has_presence: bool
    rules: FieldRules | None
    doc: Doc
    deprecated: bool = False
    # proto2 `required` or editions' LEGACY_REQUIRED: a message without it cannot be serialized.
    legacy_required: bool = False
    protovalidate: ValueRules | None = None  # (buf.validate.field), compiled


class MapEntry(NamedTuple):
    key: Field
    value: Field


class Oneof(NamedTuple):
    name: str
    field_names: tuple[str, ...]
    required: bool  # (validate.required)
    doc: Doc
    protovalidate_required: bool = False  # (buf.validate.oneof).required


class EnumValue(NamedTuple):
    name: str
    number: int
    doc: Doc


class Enum(NamedTuple):
    ref: TypeRef
    values: tuple[EnumValue, ...]
    doc: Doc
    closed: bool = False  # proto2 or editions' CLOSED: a field cannot hold other numbers


class Message(NamedTuple):
    ref: TypeRef
    fields: tuple[Field, ...]
    oneofs: tuple[Oneof, ...]
    messages: tuple[Message, ...]  # nested, map entries excluded
    enums: tuple[Enum, ...]
    doc: Doc
    validation_disabled: bool = False  # (validate.disabled)
    validation_ignored: bool = False  # (validate.ignored)
    protovalidate: MessageRules | None = None  # (buf.validate.message), compiled


class Idempotency(enum.Enum):
    UNKNOWN = "unknown"
    NO_SIDE_EFFECTS = "no_side_effects"
    IDEMPOTENT = "idempotent"


class Method(NamedTuple):
    name: str  # proto name: GetUser
    path: str  # /user.v1.UserService/GetUser
    servicer_name: str  # the handler's Python name on the base class: get_user
    client_name: str  # the coroutine's Python name on the client: get_user
    kind: Kind
    request: TypeRef
    response: TypeRef
    doc: Doc
    timeout: float | None  # default client deadline in seconds
    idempotency: Idempotency
    retryable: bool
    validate_request: bool
    public: bool
    roles: tuple[str, ...] = ()
    deprecated: bool = False


class Service(NamedTuple):
    name: str  # proto name: UserService
    full_name: str  # user.v1.UserService
    base_class: str  # UserServiceBase
    client_class: str  # UserServiceClient
    register_function: str  # add_user_service_to_server
    methods: tuple[Method, ...]
    doc: Doc
    deprecated: bool = False


class File(NamedTuple):
    proto_path: str  # user/v1/user.proto
    package: str
    pb2_module: str  # user.v1.user_pb2
    services: tuple[Service, ...]
    messages: tuple[Message, ...]
    enums: tuple[Enum, ...]
