"""A protoc plugin that does nothing: the floor for bench/bench_plugin.py.

It does the work every Python plugin cannot avoid -- start the interpreter,
import protobuf, read and parse the CodeGeneratorRequest, serialize a response --
and nothing else. It advertises the same capabilities as protoc-gen-pyservice so
that protoc accepts the same inputs (proto3 optional, editions up to 2024).
"""

from __future__ import annotations

import sys

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

SUPPORTED_FEATURES = (
    plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    | plugin_pb2.CodeGeneratorResponse.FEATURE_SUPPORTS_EDITIONS
)


def empty_response() -> plugin_pb2.CodeGeneratorResponse:
    """An empty response with the same feature flags and edition range as ours."""
    return plugin_pb2.CodeGeneratorResponse(
        supported_features=SUPPORTED_FEATURES,
        minimum_edition=descriptor_pb2.EDITION_PROTO2,
        maximum_edition=descriptor_pb2.EDITION_2024,
    )


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest()
    request.ParseFromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(empty_response().SerializeToString())
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
