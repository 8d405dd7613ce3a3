"""The protoc-facing shell: CodeGeneratorRequest on stdin -> CodeGeneratorResponse on stdout."""

import os
import sys

from google.protobuf.compiler import plugin_pb2
from google.protobuf.message import DecodeError
from protoc_gen_pyservice import __version__

USAGE = (
    "usage: protoc-gen-pyservice [--version | --help]; without arguments it is a protoc plugin, "
    "run by protoc or buf generate with a CodeGeneratorRequest on stdin"
)


def main() -> int:
    if len(sys.argv) > 1:
        return _answer(sys.argv[1:])
    data = sys.stdin.buffer.read()
    dump_path = os.environ.get("PYSERVICE_DUMP_REQUEST")
    if dump_path:
        try:
            with open(dump_path, "wb") as dump:
                dump.write(data)
        except OSError as error:
            print(f"protoc-gen-pyservice: cannot save the request: {error}", file=sys.stderr)
            return 1
    if not data:
        print(
            "protoc-gen-pyservice: no CodeGeneratorRequest on stdin (run me from protoc or buf)",
            file=sys.stderr,
        )
        return 1
    request = plugin_pb2.CodeGeneratorRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as error:
        print(
            f"protoc-gen-pyservice: stdin is not a CodeGeneratorRequest ({len(data)} bytes):",
            error,
            file=sys.stderr,
        )
        return 1
    response = _respond(request)
    sys.stdout.buffer.write(response.SerializeToString())
    sys.stdout.buffer.flush()
    return 0


def _answer(arguments: list[str]) -> int:
    """A person ran the plugin by hand: protoc never passes it arguments."""
    if arguments == ["--version"]:
        print(f"protoc-gen-pyservice {__version__}")
        return 0
    if arguments in (["--help"], ["-h"]):
        print(USAGE)
        return 0
    # With one of ours first, what follows it is the stray one.
    unexpected = arguments[1] if arguments[0] in ("--version", "--help", "-h") else arguments[0]
    print(
        f"protoc-gen-pyservice: unexpected argument {unexpected!r} (it takes --version or "
        "--help alone; protoc and buf run it without arguments)",
        file=sys.stderr,
    )
    return 2


def _respond(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    try:
        # Imported after parsing so a bad invocation answers fast.
        from protoc_gen_pyservice.pipeline import generate
    except Exception as error:  # a broken install must still answer protoc
        return plugin_pb2.CodeGeneratorResponse(
            error=f"internal error: cannot load the generator: {error!r}"
        )
    return generate(request)


if __name__ == "__main__":
    sys.exit(main())
