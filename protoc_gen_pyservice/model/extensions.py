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
from google.protobuf.message import Message
from protoc_gen_pyservice.errors import GenerationError

VALIDATE_RULES = "validate.rules"
VALIDATE_DISABLED = "validate.disabled"
VALIDATE_IGNORED = "validate.ignored"
VALIDATE_REQUIRED = "validate.required"
PYSERVICE_METHOD = "pyservice.method"
PYSERVICE_SERVICE = "pyservice.service"
_KNOWN = frozenset(
    {
        VALIDATE_RULES,
        VALIDATE_DISABLED,
        VALIDATE_IGNORED,
        VALIDATE_REQUIRED,
        PYSERVICE_METHOD,
        PYSERVICE_SERVICE,
    }
)


class OptionReader:
    """Looks up extension values on options messages by the extension's full name."""

    def __init__(self, files: Sequence[d.FileDescriptorProto]) -> None:
        declaring = [file for file in files if _declared_extensions(file) & _KNOWN]
        self._extensions: dict[str, descriptor.FieldDescriptor] = {}
        self._option_classes: dict[str, type[Message]] = {}
        if not declaring:
            return
        pool = descriptor_pool.DescriptorPool()
        by_name = {file.name: file for file in files}
        added: set[str] = set()
        for file in declaring:
            _add_with_dependencies(pool, by_name, file.name, added)
        message_factory.GetMessageClassesForFiles(sorted(added), pool)
        for name in _KNOWN:
            try:
                self._extensions[name] = pool.FindExtensionByName(name)
            except KeyError:
                continue
        for extension in self._extensions.values():
            options_type = extension.containing_type
            assert options_type is not None  # every extension extends some message
            self._option_classes[options_type.full_name] = message_factory.GetMessageClass(
                options_type
            )

    def get(self, options: Message, extension_name: str) -> Any:
        """The extension's value on `options`, or None when it is unset or unknown."""
        extension = self._extensions.get(extension_name)
        if extension is None or not options.ByteSize():
            return None
        options_class = self._option_classes[options.DESCRIPTOR.full_name]
        parsed = options_class.FromString(options.SerializeToString())
        if not parsed.HasExtension(extension):  # type: ignore[arg-type]
            return None
        return parsed.Extensions[extension]  # type: ignore[index]


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
