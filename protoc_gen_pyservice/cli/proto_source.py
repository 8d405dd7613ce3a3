"""A compiled .proto file (FileDescriptorProto) printed back as .proto source.

protovalidate's wheel carries `buf/validate/validate.proto` only as a serialized descriptor; buf
and protoc need source. What is printed compiles back to the same descriptor (a test compiles
it with protoc and compares): messages, fields with their options (extensions included, as
text-format aggregates), oneofs, enums, extensions, extension ranges and reserved names. It has
no comments, because the descriptor carries none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_encoding,
    text_format,
)
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

_Field = descriptor_pb2.FieldDescriptorProto
_TYPES = {
    _Field.TYPE_DOUBLE: "double",
    _Field.TYPE_FLOAT: "float",
    _Field.TYPE_INT64: "int64",
    _Field.TYPE_UINT64: "uint64",
    _Field.TYPE_INT32: "int32",
    _Field.TYPE_FIXED64: "fixed64",
    _Field.TYPE_FIXED32: "fixed32",
    _Field.TYPE_BOOL: "bool",
    _Field.TYPE_STRING: "string",
    _Field.TYPE_BYTES: "bytes",
    _Field.TYPE_UINT32: "uint32",
    _Field.TYPE_SFIXED32: "sfixed32",
    _Field.TYPE_SFIXED64: "sfixed64",
    _Field.TYPE_SINT32: "sint32",
    _Field.TYPE_SINT64: "sint64",
}
_LABELS = {
    _Field.LABEL_OPTIONAL: "optional",
    _Field.LABEL_REQUIRED: "required",
    _Field.LABEL_REPEATED: "repeated",
}
_MAX_FIELD_NUMBER = 536_870_911
_INDENT = "  "


class UnprintableProtoError(ValueError):
    """The descriptor uses something this printer does not write (groups, editions)."""


def proto_source(
    file: descriptor_pb2.FileDescriptorProto, pool: descriptor_pool.DescriptorPool
) -> str:
    """`file` as .proto source. `pool` holds `file` and its dependencies, so that options set
    through extensions (the file's own or its imports') print by name."""
    if file.syntax not in ("", "proto2", "proto3"):
        raise UnprintableProtoError(f"{file.name}: syntax {file.syntax!r} is not printed")
    printer = _Printer(pool, file.package)
    return "\n".join(printer.file(file)) + "\n"


class _Printer:
    def __init__(self, pool: descriptor_pool.DescriptorPool, package: str) -> None:
        self._pool = pool
        self._package = package
        self._syntax = "proto2"

    def file(self, file: descriptor_pb2.FileDescriptorProto) -> Iterator[str]:
        self._syntax = file.syntax or "proto2"
        yield f'syntax = "{self._syntax}";'
        yield ""
        yield f"package {file.package};"
        yield ""
        public = set(file.public_dependency)
        weak = set(file.weak_dependency)
        for index, dependency in enumerate(file.dependency):
            kind = "public " if index in public else "weak " if index in weak else ""
            yield f'import {kind}"{dependency}";'
        yield ""
        for option in self._options(file.options, "google.protobuf.FileOptions"):
            yield f"option {option};"
        for extensions in _grouped_extensions(file.extension):
            yield ""
            yield from self._extend(extensions, 0)
        for enum in file.enum_type:
            yield ""
            yield from self._enum(enum, 0)
        for message in file.message_type:
            yield ""
            yield from self._message(message, 0)

    def _message(self, message: descriptor_pb2.DescriptorProto, depth: int) -> Iterator[str]:
        pad = _INDENT * depth
        inner = _INDENT * (depth + 1)
        yield f"{pad}message {message.name} {{"
        for option in self._options(message.options, "google.protobuf.MessageOptions"):
            yield f"{inner}option {option};"
        map_entries = {
            nested.name: nested for nested in message.nested_type if nested.options.map_entry
        }
        for enum in message.enum_type:
            yield from self._enum(enum, depth + 1)
        for nested in message.nested_type:
            if nested.name not in map_entries:
                yield from self._message(nested, depth + 1)
        written_oneofs: set[int] = set()
        for field in message.field:
            if field.HasField("oneof_index") and not field.proto3_optional:
                if field.oneof_index in written_oneofs:
                    continue
                written_oneofs.add(field.oneof_index)
                yield from self._oneof(message, field.oneof_index, map_entries, depth + 1)
                continue
            yield inner + self._field(field, map_entries, in_oneof=False)
        for extensions in _grouped_extensions(message.extension):
            yield from self._extend(extensions, depth + 1)
        for extension_range in message.extension_range:
            end = extension_range.end - 1
            options = self._bracketed(
                extension_range.options, "google.protobuf.ExtensionRangeOptions"
            )
            upper = "max" if end >= _MAX_FIELD_NUMBER else str(end)
            yield f"{inner}extensions {extension_range.start} to {upper}{options};"
        for reserved in message.reserved_range:
            end = reserved.end - 1
            if end == reserved.start:
                yield f"{inner}reserved {reserved.start};"
            else:
                upper = "max" if end >= _MAX_FIELD_NUMBER else str(end)
                yield f"{inner}reserved {reserved.start} to {upper};"
        for name in message.reserved_name:
            yield f'{inner}reserved "{name}";'
        yield f"{pad}}}"

    def _oneof(
        self,
        message: descriptor_pb2.DescriptorProto,
        index: int,
        map_entries: dict[str, descriptor_pb2.DescriptorProto],
        depth: int,
    ) -> Iterator[str]:
        pad = _INDENT * depth
        oneof = message.oneof_decl[index]
        yield f"{pad}oneof {oneof.name} {{"
        for option in self._options(oneof.options, "google.protobuf.OneofOptions"):
            yield f"{pad}{_INDENT}option {option};"
        for field in message.field:
            if field.HasField("oneof_index") and field.oneof_index == index:
                yield pad + _INDENT + self._field(field, map_entries, in_oneof=True)
        yield f"{pad}}}"

    def _field(
        self,
        field: descriptor_pb2.FieldDescriptorProto,
        map_entries: dict[str, descriptor_pb2.DescriptorProto],
        *,
        in_oneof: bool,
    ) -> str:
        if field.type == _Field.TYPE_GROUP:
            raise UnprintableProtoError(f"group field {field.name} is not printed")
        entry = map_entries.get(field.type_name.rsplit(".", 1)[-1])
        if entry is not None and field.label == _Field.LABEL_REPEATED:
            key, value = entry.field[0], entry.field[1]
            declared = f"map<{_type_name(key)}, {_type_name(value)}>"
        else:
            declared = _type_name(field)
            label = _LABELS[field.label]
            if in_oneof or (self._syntax == "proto3" and label == "optional"):
                label = "optional" if field.proto3_optional else ""
            if label:
                declared = f"{label} {declared}"
        options = []
        if field.HasField("default_value"):
            options.append(f"default = {_default(field)}")
        if field.HasField("json_name") and field.json_name != _json_name(field.name):
            options.append(f'json_name = "{_escaped(field.json_name)}"')
        options += self._options(field.options, "google.protobuf.FieldOptions")
        shown = f" [{', '.join(options)}]" if options else ""
        return f"{declared} {field.name} = {field.number}{shown};"

    def _enum(self, enum: descriptor_pb2.EnumDescriptorProto, depth: int) -> Iterator[str]:
        pad = _INDENT * depth
        inner = _INDENT * (depth + 1)
        yield f"{pad}enum {enum.name} {{"
        for option in self._options(enum.options, "google.protobuf.EnumOptions"):
            yield f"{inner}option {option};"
        for value in enum.value:
            shown = self._bracketed(value.options, "google.protobuf.EnumValueOptions")
            yield f"{inner}{value.name} = {value.number}{shown};"
        for reserved in enum.reserved_range:
            if reserved.end == reserved.start:
                yield f"{inner}reserved {reserved.start};"
            else:
                yield f"{inner}reserved {reserved.start} to {reserved.end};"
        for name in enum.reserved_name:
            yield f'{inner}reserved "{name}";'
        yield f"{pad}}}"

    def _extend(
        self, extensions: list[descriptor_pb2.FieldDescriptorProto], depth: int
    ) -> Iterator[str]:
        pad = _INDENT * depth
        yield f"{pad}extend {extensions[0].extendee} {{"
        for extension in extensions:
            yield pad + _INDENT + self._field(extension, {}, in_oneof=False)
        yield f"{pad}}}"

    def _bracketed(self, options: Message, full_name: str) -> str:
        shown = self._options(options, full_name)
        return f" [{', '.join(shown)}]" if shown else ""

    def _options(self, options: Message, full_name: str) -> list[str]:
        """Each option set in `options` as `name = value`, extensions as `(full.name)`."""
        raw = options.SerializeToString()
        if not raw:
            return []
        message_class = message_factory.GetMessageClass(self._pool.FindMessageTypeByName(full_name))
        resolved = message_class.FromString(raw)
        shown = []
        for field, value in resolved.ListFields():
            name = f"({field.full_name})" if field.is_extension else field.name
            values = value if field.is_repeated else [value]
            shown += [f"{name} = {self._option_value(field, item)}" for item in values]
        return shown

    def _option_value(self, field: FieldDescriptor, value: object) -> str:
        if field.message_type is not None:
            assert isinstance(value, Message)
            body = text_format.MessageToString(
                value, as_one_line=True, descriptor_pool=self._pool, as_utf8=False
            )
            return f"{{ {body} }}" if body else "{}"
        if field.enum_type is not None:
            assert isinstance(value, int)
            return field.enum_type.values_by_number[value].name
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return f'"{_escaped(value)}"'
        if isinstance(value, bytes):
            return f'"{_escaped(value)}"'
        return repr(value)


def _grouped_extensions(
    extensions: Iterable[descriptor_pb2.FieldDescriptorProto],
) -> Iterator[list[descriptor_pb2.FieldDescriptorProto]]:
    """Consecutive extensions of one extendee, each group one `extend` block."""
    group: list[descriptor_pb2.FieldDescriptorProto] = []
    for extension in extensions:
        if group and group[-1].extendee != extension.extendee:
            yield group
            group = []
        group.append(extension)
    if group:
        yield group


def _type_name(field: descriptor_pb2.FieldDescriptorProto) -> str:
    if field.type in (_Field.TYPE_MESSAGE, _Field.TYPE_ENUM) or not field.HasField("type"):
        return field.type_name
    return _TYPES[field.type]


def _default(field: descriptor_pb2.FieldDescriptorProto) -> str:
    if field.type == _Field.TYPE_STRING:
        return f'"{_escaped(field.default_value)}"'
    if field.type == _Field.TYPE_BYTES:
        # The descriptor holds bytes defaults already C-escaped.
        return f'"{field.default_value}"'
    return field.default_value


def _json_name(name: str) -> str:
    """protoc's default json_name: lowerCamelCase of the field name."""
    parts = name.split("_")
    return parts[0] + "".join(part[:1].upper() + part[1:] for part in parts[1:])


def _escaped(value: str | bytes) -> str:
    """protoc's C escaping of a string or bytes literal (text_encoding takes both)."""
    return text_encoding.CEscape(value, False)  # type: ignore[arg-type]
