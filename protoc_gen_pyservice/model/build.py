"""The only code that walks descriptors: a CodeGeneratorRequest's files -> the typed model."""

import re
from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor_pb2 as d
from google.protobuf.descriptor import FieldDescriptor
from protoc_gen_pyservice.errors import GenerationError
from protoc_gen_pyservice.model import comments as paths
from protoc_gen_pyservice.model import extensions, naming, rules
from protoc_gen_pyservice.model import protovalidate as protovalidate_rules
from protoc_gen_pyservice.model.comments import Comments
from protoc_gen_pyservice.model.extensions import OptionReader
from protoc_gen_pyservice.model.nodes import (
    Doc,
    Enum,
    EnumValue,
    Field,
    FieldType,
    File,
    Idempotency,
    Kind,
    MapEntry,
    Message,
    Method,
    Oneof,
    Service,
    TypeRef,
)
from protoc_gen_pyservice.model.symbols import SymbolIndex
from protoc_gen_pyservice.options import Options

# Names a generated client defines itself; an RPC with one of these names gets a suffix.
CLIENT_RESERVED = frozenset({"close", "connect", "channel"})
# Module names generated code uses inside class bodies, where a method of the same name would
# shadow them in annotations.
MODULE_NAMES = frozenset({"grpc", "runtime"})

_EDITION_DEFAULT_PRESENCE = d.FeatureSet.EXPLICIT
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDEMPOTENCY = {
    d.MethodOptions.IDEMPOTENCY_UNKNOWN: Idempotency.UNKNOWN,
    d.MethodOptions.NO_SIDE_EFFECTS: Idempotency.NO_SIDE_EFFECTS,
    d.MethodOptions.IDEMPOTENT: Idempotency.IDEMPOTENT,
}


class ModelBuilder:
    """Builds File models for the files to generate, resolving names through one index."""

    def __init__(self, files: Sequence[d.FileDescriptorProto], options: Options) -> None:
        self._symbols = SymbolIndex(files)
        self._reader = OptionReader(files)
        self._protovalidate = _protovalidate_compiler(self._reader)
        self._options = options
        self._protos = {file.name: file for file in files}
        self._models: dict[str, File] = {}

    def model(self, proto_path: str) -> File:
        """The model of one file of the request, built once."""
        model = self._models.get(proto_path)
        if model is None:
            builder = _FileBuilder(
                self._protos[proto_path],
                self._symbols,
                self._reader,
                self._options,
                self._protovalidate,
            )
            model = self._models[proto_path] = builder.build()
        return model


class _FileBuilder:
    def __init__(
        self,
        proto: d.FileDescriptorProto,
        symbols: SymbolIndex,
        reader: OptionReader,
        options: Options,
        protovalidate: protovalidate_rules.Compiler | None,
    ) -> None:
        self._proto = proto
        self._symbols = symbols
        self._reader = reader
        self._options = options
        self._protovalidate = protovalidate
        self._comments = Comments(proto.source_code_info)
        self._prefix = f"{proto.package}." if proto.package else ""

    def build(self) -> File:
        proto = self._proto
        top_level_names: set[str] = set()
        services = tuple(
            self._service(service, (paths.FILE_SERVICE, index), top_level_names)
            for index, service in enumerate(proto.service)
        )
        return File(
            proto_path=proto.name,
            package=proto.package,
            pb2_module=naming.pb2_module(proto.name),
            services=services,
            messages=tuple(
                self._message(message, self._prefix, (paths.FILE_MESSAGE, index))
                for index, message in enumerate(proto.message_type)
            ),
            enums=tuple(
                self._enum(enum, self._prefix, (paths.FILE_ENUM, index))
                for index, enum in enumerate(proto.enum_type)
            ),
        )

    def _element(self, full_name: str) -> str:
        """Where a problem is: the file, then the element's full name, which must be made of
        proto identifiers (protoc guarantees it; a hand-made request may not)."""
        element = f"{self._proto.name}: {full_name}"
        if not all(_IDENTIFIER.fullmatch(part) for part in full_name.split(".")):
            raise GenerationError(element, "is not a valid proto identifier")
        return element

    # Services

    def _service(
        self, service: d.ServiceDescriptorProto, path: paths.Path, top_level_names: set[str]
    ) -> Service:
        full_name = self._prefix + service.name
        service_options = self._reader.get(
            service.options, extensions.PYSERVICE_SERVICE, self._element(full_name)
        )
        servicer_names: set[str] = set()
        client_names: set[str] = set(CLIENT_RESERVED)
        methods = tuple(
            self._method(
                method,
                full_name,
                service_options,
                servicer_names,
                client_names,
                (*path, paths.SERVICE_METHOD, index),
            )
            for index, method in enumerate(service.method)
        )
        return Service(
            name=service.name,
            full_name=full_name,
            # Services differing only in case (Users, users) still get distinct names.
            base_class=naming.unique_class(
                f"{naming.class_name(service.name)}Base", top_level_names
            ),
            client_class=naming.unique_class(
                f"{naming.class_name(service.name)}Client", top_level_names
            ),
            register_function=naming.unique(
                f"add_{naming.snake_case(service.name)}_to_server", top_level_names
            ),
            methods=methods,
            doc=self._comments.doc(path),
            deprecated=service.options.deprecated,
        )

    def _method(
        self,
        method: d.MethodDescriptorProto,
        service_name: str,
        service_options: object,
        servicer_names: set[str],
        client_names: set[str],
        path: paths.Path,
    ) -> Method:
        element = self._element(f"{service_name}.{method.name}")
        method_options = self._reader.get(method.options, extensions.PYSERVICE_METHOD, element)
        kind = _kind(method)
        python_name = naming.attribute(naming.snake_case(method.name))
        if python_name in MODULE_NAMES or python_name.endswith("_pb2"):
            python_name += "_"
        idempotency = _IDEMPOTENCY[method.options.idempotency_level]
        retryable = (
            method_options.retryable
            if method_options is not None and method_options.HasField("retryable")
            else idempotency is not Idempotency.UNKNOWN
        )
        return Method(
            name=method.name,
            path=f"/{service_name}/{method.name}",
            servicer_name=naming.unique(python_name, servicer_names),
            client_name=naming.unique(python_name, client_names),
            kind=kind,
            request=self._type(method.input_type, element, "request type"),
            response=self._type(method.output_type, element, "response type"),
            doc=self._comments.doc(path),
            timeout=self._timeout(element, kind, method_options, service_options),
            idempotency=idempotency,
            retryable=retryable,
            validate_request=self._options.validate
            and not (
                _flag(method_options, "skip_validation")
                or _flag(service_options, "skip_validation")
            ),
            public=_flag(method_options, "public"),
            roles=tuple(method_options.roles) if method_options is not None else (),
            deprecated=method.options.deprecated,
        )

    def _timeout(
        self, element: str, kind: Kind, method_options: object, service_options: object
    ) -> float | None:
        for options, where in (
            (method_options, "pyservice.method"),
            (service_options, "pyservice.service"),
        ):
            if options is not None and options.HasField("timeout"):  # type: ignore[attr-defined]
                timeout = options.timeout  # type: ignore[attr-defined]
                if timeout.seconds < 0 or not 0 <= timeout.nanos < 1_000_000_000:
                    raise GenerationError(
                        element, f"({where}).timeout must be a non-negative, normalised duration"
                    )
                seconds = timeout.seconds + timeout.nanos / 1e9
                # An explicit zero opts the method out of any default deadline.
                return float(seconds) if seconds else None
        if kind.server_streaming:
            return None
        return self._options.default_timeout

    def _type(self, type_name: str, element: str, what: str) -> TypeRef:
        ref = self._symbols.lookup(type_name)
        if ref is None:
            raise GenerationError(element, f"{what} {type_name!r} is not defined in the request")
        return ref

    # Messages and enums

    def _message(self, message: d.DescriptorProto, prefix: str, path: paths.Path) -> Message:
        full_name = prefix + message.name
        element = self._element(full_name)
        ref = self._type("." + full_name, element, "message")
        map_entries = {
            f"{full_name}.{nested.name}": nested
            for nested in message.nested_type
            if nested.options.map_entry
        }
        fields = tuple(
            self._field(
                field,
                message,
                map_entries,
                element,
                (*path, paths.MESSAGE_FIELD, index),
                full_name,
            )
            for index, field in enumerate(message.field)
        )
        oneofs = tuple(
            Oneof(
                name=oneof.name,
                field_names=tuple(
                    field.name
                    for field in message.field
                    if field.HasField("oneof_index") and field.oneof_index == index
                ),
                required=bool(
                    self._reader.get(oneof.options, extensions.VALIDATE_REQUIRED, element)
                ),
                doc=self._comments.doc((*path, paths.MESSAGE_ONEOF, index)),
                protovalidate_required=self._oneof_required(oneof, element),
            )
            for index, oneof in enumerate(message.oneof_decl)
            if not _is_synthetic_oneof(message, index)
        )
        return Message(
            ref=ref,
            fields=fields,
            oneofs=oneofs,
            messages=tuple(
                self._message(nested, full_name + ".", (*path, paths.MESSAGE_NESTED, index))
                for index, nested in enumerate(message.nested_type)
                if not nested.options.map_entry
            ),
            enums=tuple(
                self._enum(enum, full_name + ".", (*path, paths.MESSAGE_ENUM, index))
                for index, enum in enumerate(message.enum_type)
            ),
            doc=self._comments.doc(path),
            validation_disabled=bool(
                self._reader.get(message.options, extensions.VALIDATE_DISABLED, element)
            ),
            validation_ignored=bool(
                self._reader.get(message.options, extensions.VALIDATE_IGNORED, element)
            ),
            protovalidate=self._message_rules(message, full_name, element),
        )

    def _oneof_required(self, oneof: d.OneofDescriptorProto, element: str) -> bool:
        rules = self._reader.get(oneof.options, extensions.BUF_ONEOF, element)
        return rules is not None and bool(rules.required)

    def _message_rules(
        self, message: d.DescriptorProto, full_name: str, element: str
    ) -> protovalidate_rules.MessageRules | None:
        rules = self._reader.get(message.options, extensions.BUF_MESSAGE, element)
        if rules is None or self._protovalidate is None:
            return None
        return self._protovalidate.message(rules, full_name, element)

    def _field_rules(
        self, message_name: str | None, field_name: str, element: str, options: d.FieldOptions
    ) -> protovalidate_rules.ValueRules | None:
        rules = self._reader.get(options, extensions.BUF_FIELD, element)
        if rules is None or self._protovalidate is None or message_name is None:
            return None
        assert self._reader.pool is not None  # the compiler exists only with a pool
        descriptor = self._reader.pool.FindMessageTypeByName(message_name)
        return self._protovalidate.field(descriptor.fields_by_name[field_name], rules, element)

    def _field(
        self,
        field: d.FieldDescriptorProto,
        message: d.DescriptorProto,
        map_entries: dict[str, d.DescriptorProto],
        element: str,
        path: paths.Path | None,
        message_name: str | None = None,
    ) -> Field:
        field_element = f"{element}.{field.name}"
        if not _IDENTIFIER.fullmatch(field.name):
            raise GenerationError(field_element, "is not a valid proto identifier")
        field_type = FieldType(d.FieldDescriptorProto.Type.Name(field.type)[5:].lower())
        type_ref = None
        map_entry = None
        if field_type in (FieldType.MESSAGE, FieldType.ENUM, FieldType.GROUP):
            type_ref = self._type(field.type_name, field_element, "field type")
            entry = map_entries.get(type_ref.proto_name)
            if entry is not None:
                if len(entry.field) != 2:
                    raise GenerationError(field_element, "map entry must have a key and a value")
                key, value = entry.field
                map_entry = MapEntry(
                    key=self._field(key, entry, {}, field_element, None),
                    value=self._field(value, entry, {}, field_element, None),
                )
        in_real_oneof = field.HasField("oneof_index") and not field.proto3_optional
        if field.HasField("oneof_index") and not 0 <= field.oneof_index < len(message.oneof_decl):
            raise GenerationError(field_element, f"oneof_index {field.oneof_index} names no oneof")
        raw_rules = self._reader.get(field.options, extensions.VALIDATE_RULES, field_element)
        buf_rules = self._field_rules(message_name, field.name, field_element, field.options)
        if raw_rules is not None and buf_rules is not None:
            raise GenerationError(
                field_element,
                "has both (validate.rules) and (buf.validate.field): a field takes its rules "
                "from one of protoc-gen-validate and protovalidate",
            )
        return Field(
            name=field.name,
            number=field.number,
            type=field_type,
            type_ref=type_ref,
            repeated=field.label == d.FieldDescriptorProto.LABEL_REPEATED,
            map_entry=map_entry,
            oneof=message.oneof_decl[field.oneof_index].name if in_real_oneof else None,
            proto3_optional=field.proto3_optional,
            has_presence=self._has_presence(field, message),
            rules=rules.field_rules(raw_rules, field_element) if raw_rules is not None else None,
            doc=self._comments.doc(path) if path is not None else Doc(),
            deprecated=field.options.deprecated,
            legacy_required=field.label == d.FieldDescriptorProto.LABEL_REQUIRED
            or self._presence(field, message) == d.FeatureSet.LEGACY_REQUIRED,
            protovalidate=buf_rules,
        )

    def _has_presence(self, field: d.FieldDescriptorProto, message: d.DescriptorProto) -> bool:
        if field.label == d.FieldDescriptorProto.LABEL_REPEATED:
            return False
        if field.type in (d.FieldDescriptorProto.TYPE_MESSAGE, d.FieldDescriptorProto.TYPE_GROUP):
            return True
        if field.HasField("oneof_index"):
            return True
        syntax = self._proto.syntax or "proto2"
        if syntax == "proto2":
            return True
        if syntax == "proto3":
            return False
        return self._presence(field, message) != d.FeatureSet.IMPLICIT

    def _presence(self, field: d.FieldDescriptorProto, message: d.DescriptorProto) -> int:
        """An editions field's resolved field_presence feature (unset outside editions)."""
        if self._proto.syntax != "editions":
            return d.FeatureSet.FIELD_PRESENCE_UNKNOWN
        return (
            field.options.features.field_presence
            or message.options.features.field_presence
            or self._proto.options.features.field_presence
            or _EDITION_DEFAULT_PRESENCE
        )

    def _enum(self, enum: d.EnumDescriptorProto, prefix: str, path: paths.Path) -> Enum:
        full_name = prefix + enum.name
        return Enum(
            ref=self._type("." + full_name, self._element(full_name), "enum"),
            values=tuple(
                EnumValue(
                    name=value.name,
                    number=value.number,
                    doc=self._comments.doc((*path, paths.ENUM_VALUE, index)),
                )
                for index, value in enumerate(enum.value)
            ),
            doc=self._comments.doc(path),
            closed=self._closed(enum),
        )

    def _closed(self, enum: d.EnumDescriptorProto) -> bool:
        syntax = self._proto.syntax or "proto2"
        if syntax != "editions":
            return syntax == "proto2"
        enum_type = enum.options.features.enum_type or self._proto.options.features.enum_type
        return enum_type == d.FeatureSet.CLOSED


def _kind(method: d.MethodDescriptorProto) -> Kind:
    if method.client_streaming:
        return Kind.STREAM_STREAM if method.server_streaming else Kind.STREAM_UNARY
    return Kind.UNARY_STREAM if method.server_streaming else Kind.UNARY_UNARY


def _flag(options: object, name: str) -> bool:
    return options is not None and bool(getattr(options, name))


def _is_synthetic_oneof(message: d.DescriptorProto, index: int) -> bool:
    members = [f for f in message.field if f.HasField("oneof_index") and f.oneof_index == index]
    return bool(members) and all(f.proto3_optional for f in members)


def _protovalidate_compiler(reader: OptionReader) -> protovalidate_rules.Compiler | None:
    """The compiler of protovalidate rules, when the request declares buf.validate's options."""
    if reader.pool is None or reader.extension(extensions.BUF_FIELD) is None:
        return None
    found: dict[str, Any] = {}

    def predefined_of(rule_field: FieldDescriptor) -> Any:
        """Read once per rule field: every field with that rule asks again."""
        name = rule_field.full_name
        if name not in found:
            options = d.FieldOptions.FromString(rule_field.GetOptions().SerializeToString())
            found[name] = reader.get(options, extensions.BUF_PREDEFINED, f"rule {name}")
        return found[name]

    return protovalidate_rules.Compiler(reader.pool, predefined_of)
