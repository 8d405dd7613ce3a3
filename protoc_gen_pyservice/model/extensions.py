"""Reads custom options (validate's rules, our pyservice options) out of descriptor options.

The plugin cannot know in advance which copy of validate.proto or pyservice/options.proto a
request was compiled against, so it builds a private descriptor pool from the very files in
the request and re-parses option messages against it. The pool is only built when a request
declares one of the extensions we read, so protos that use neither pay nothing.
"""

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor, descriptor_pool, message_factory
from google.protobuf import descriptor_pb2 as d
from google.protobuf.message import DecodeError, Message
from protoc_gen_pyservice.errors import GenerationError

VALIDATE_RULES = "validate.rules"
VALIDATE_DISABLED = "validate.disabled"
VALIDATE_IGNORED = "validate.ignored"
VALIDATE_REQUIRED = "validate.required"
BUF_FIELD = "buf.validate.field"
BUF_MESSAGE = "buf.validate.message"
BUF_ONEOF = "buf.validate.oneof"
BUF_PREDEFINED = "buf.validate.predefined"
PYSERVICE_METHOD = "pyservice.method"
PYSERVICE_SERVICE = "pyservice.service"
# Each extension we read, with the message type it must have (None: a bool).
_KNOWN: dict[str, str | None] = {
    VALIDATE_RULES: "validate.FieldRules",
    VALIDATE_DISABLED: None,
    VALIDATE_IGNORED: None,
    VALIDATE_REQUIRED: None,
    BUF_FIELD: "buf.validate.FieldRules",
    BUF_MESSAGE: "buf.validate.MessageRules",
    BUF_ONEOF: "buf.validate.OneofRules",
    BUF_PREDEFINED: "buf.validate.PredefinedRules",
    PYSERVICE_METHOD: "pyservice.MethodOptions",
    PYSERVICE_SERVICE: "pyservice.ServiceOptions",
}


class OptionReader:
    """Looks up extension values on options messages by the extension's full name."""

    def __init__(self, files: Sequence[d.FileDescriptorProto]) -> None:
        declaring = [file for file in files if _declared_extensions(file) & _KNOWN.keys()]
        self._extensions: dict[str, descriptor.FieldDescriptor] = {}
        self._option_classes: dict[str, type[Message]] = {}
        self.pool: descriptor_pool.DescriptorPool | None = None
        if not declaring:
            return
        pool = descriptor_pool.DescriptorPool()
        by_name = {file.name: file for file in files}
        added: set[str] = set()
        # protovalidate's CEL rules are type-checked against every message type, and its
        # predefined rules are extensions declared in the project's own files: all of them.
        protovalidate = any(
            _declared_extensions(file) & {BUF_FIELD, BUF_MESSAGE} for file in declaring
        )
        for file in files if protovalidate else declaring:
            _add_with_dependencies(pool, by_name, file.name, added)
        self.pool = pool
        message_factory.GetMessageClassesForFiles(sorted(added), pool)
        for name, expected_type in _KNOWN.items():
            try:
                extension = pool.FindExtensionByName(name)
            except KeyError:
                continue
            actual_type = extension.message_type.full_name if extension.message_type else None
            if actual_type != expected_type:
                raise GenerationError(
                    f"extension {name}",
                    f"has type {actual_type or 'scalar'}, expected "
                    f"{expected_type or 'bool'}: not the {name.split('.')[0]} options we read",
                )
            _check_fields(name, extension)
            self._extensions[name] = extension
        for extension in self._extensions.values():
            options_type = extension.containing_type
            assert options_type is not None  # every extension extends some message
            self._option_classes[options_type.full_name] = message_factory.GetMessageClass(
                options_type
            )

    def extension(self, extension_name: str) -> descriptor.FieldDescriptor | None:
        return self._extensions.get(extension_name)

    def get(self, options: Message, extension_name: str, element: str) -> Any:
        """The extension's value on `options`, or None when it is unset or unknown."""
        extension = self._extensions.get(extension_name)
        if extension is None or not options.ByteSize():
            return None
        options_class = self._option_classes[options.DESCRIPTOR.full_name]
        try:
            parsed = options_class.FromString(options.SerializeToString())
        except DecodeError as error:
            raise GenerationError(element, f"options cannot be read: {error}") from None
        if not parsed.HasExtension(extension):  # type: ignore[arg-type]
            return None
        return parsed.Extensions[extension]  # type: ignore[index]


# The fields of our own options messages the model reads, with their types.
_TYPE_BOOL = descriptor.FieldDescriptor.TYPE_BOOL
_TYPE_MESSAGE = descriptor.FieldDescriptor.TYPE_MESSAGE
_EXPECTED_FIELDS = {
    PYSERVICE_METHOD: {
        "timeout": _TYPE_MESSAGE,
        "skip_validation": _TYPE_BOOL,
        "public": _TYPE_BOOL,
        "retryable": _TYPE_BOOL,
        "roles": descriptor.FieldDescriptor.TYPE_STRING,
    },
    PYSERVICE_SERVICE: {"timeout": _TYPE_MESSAGE, "skip_validation": _TYPE_BOOL},
}


def _check_fields(name: str, extension: descriptor.FieldDescriptor) -> None:
    if name == VALIDATE_RULES and extension.message_type is not None:
        rules = extension.message_type
        message = rules.fields_by_name.get("message")
        if "type" not in rules.oneofs_by_name or message is None or message.message_type is None:
            raise GenerationError(
                f"extension {name}",
                "validate.FieldRules lacks its `type` oneof or `message` field: compile against "
                "protoc-gen-validate's validate.proto",
            )
    expected = _EXPECTED_FIELDS.get(name)
    if not expected or extension.message_type is None:
        return
    fields = extension.message_type.fields_by_name
    for field_name, field_type in expected.items():
        field = fields.get(field_name)
        # `retryable` and `timeout` are read with HasField: they must track presence.
        needs_presence = field_name in ("retryable", "timeout")
        if (
            field is None
            or field.type != field_type
            or field.is_repeated != (field_name == "roles")
            or (needs_presence and not field.has_presence)
        ):
            raise GenerationError(
                f"extension {name}",
                f"{extension.message_type.full_name}.{field_name} is missing or of another type: "
                "compile against the pyservice/options.proto protoc-gen-pyservice ships",
            )


def _declared_extensions(file: d.FileDescriptorProto) -> set[str]:
    prefix = f"{file.package}." if file.package else ""
    return {prefix + extension.name for extension in file.extension}


def _add_with_dependencies(
    pool: descriptor_pool.DescriptorPool,
    by_name: dict[str, d.FileDescriptorProto],
    name: str,
    added: set[str],
) -> None:
    if name in added:
        return
    file = by_name[name]
    for dependency in file.dependency:
        _add_with_dependencies(pool, by_name, dependency, added)
    try:
        pool.Add(file)
    except (TypeError, KeyError, ValueError) as error:
        raise GenerationError(name, f"is not a consistent file descriptor: {error}") from None
    added.add(name)
