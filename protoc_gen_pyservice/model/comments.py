"""Proto comments, found by the element's SourceCodeInfo path."""

from google.protobuf import descriptor_pb2 as d
from protoc_gen_pyservice.model.nodes import Doc

# Field numbers that make up SourceCodeInfo paths, named once so no path is a bare literal.
FILE_MESSAGE = d.FileDescriptorProto.MESSAGE_TYPE_FIELD_NUMBER
FILE_ENUM = d.FileDescriptorProto.ENUM_TYPE_FIELD_NUMBER
FILE_SERVICE = d.FileDescriptorProto.SERVICE_FIELD_NUMBER
MESSAGE_FIELD = d.DescriptorProto.FIELD_FIELD_NUMBER
MESSAGE_NESTED = d.DescriptorProto.NESTED_TYPE_FIELD_NUMBER
MESSAGE_ENUM = d.DescriptorProto.ENUM_TYPE_FIELD_NUMBER
MESSAGE_ONEOF = d.DescriptorProto.ONEOF_DECL_FIELD_NUMBER
ENUM_VALUE = d.EnumDescriptorProto.VALUE_FIELD_NUMBER
SERVICE_METHOD = d.ServiceDescriptorProto.METHOD_FIELD_NUMBER

Path = tuple[int, ...]


class Comments:
    """The comments of one file, looked up by element path."""

    def __init__(self, info: d.SourceCodeInfo) -> None:
        self._by_path: dict[Path, d.SourceCodeInfo.Location] = {}
        for location in info.location:
            if location.leading_comments or location.trailing_comments:
                self._by_path.setdefault(tuple(location.path), location)

    def doc(self, path: Path) -> Doc:
        """The element's leading comment, then its trailing one, as docstring lines."""
        location = self._by_path.get(path)
        if location is None:
            return Doc()
        parts = [
            _lines(text)
            for text in (location.leading_comments, location.trailing_comments)
            if text.strip()
        ]
        lines: list[str] = []
        for part in parts:
            if lines:
                lines.append("")
            lines.extend(part)
        return Doc(tuple(lines))


def _lines(comment: str) -> list[str]:
    """Strip the single space protoc leaves after `//`, trailing blanks and blank edges."""
    lines = [line.removeprefix(" ").rstrip() for line in comment.expandtabs(4).splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines
