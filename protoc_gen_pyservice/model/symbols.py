"""One index from full proto name to the Python module and attribute path that defines it."""

from collections.abc import Iterable

from google.protobuf import descriptor_pb2 as d
from protoc_gen_pyservice.model import naming
from protoc_gen_pyservice.model.nodes import TypeRef


class SymbolIndex:
    """Every message and enum of the request, indexed once by full name."""

    def __init__(self, files: Iterable[d.FileDescriptorProto]) -> None:
        self._refs: dict[str, TypeRef] = {}
        self._file = ""
        for file in files:
            module = naming.pb2_module(file.name)
            self._file = file.name
            prefix = f"{file.package}." if file.package else ""
            for message in file.message_type:
                self._add_message(module, prefix, "", message)
            for enum in file.enum_type:
                self._add(module, prefix + enum.name, enum.name)

    def _add(self, module: str, full_name: str, qualname: str) -> None:
        self._refs[full_name] = TypeRef(
            proto_name=full_name, module=module, qualname=qualname, proto_file=self._file
        )

    def _add_message(
        self, module: str, prefix: str, outer: str, message: d.DescriptorProto
    ) -> None:
        qualname = f"{outer}{message.name}"
        full_name = prefix + qualname
        self._add(module, full_name, qualname)
        for nested in message.nested_type:
            self._add_message(module, prefix, f"{qualname}.", nested)
        for enum in message.enum_type:
            self._add(module, f"{full_name}.{enum.name}", f"{qualname}.{enum.name}")

    def lookup(self, type_name: str) -> TypeRef | None:
        """The type named by a descriptor's `type_name` (`.user.v1.User`), if the request has it."""
        return self._refs.get(type_name.removeprefix("."))
