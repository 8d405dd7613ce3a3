"""Whatever bytes arrive, the plugin answers without a traceback."""

import io
import sys

import pytest
from google.protobuf.compiler import plugin_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protoc_gen_pyservice import plugin
from protoc_gen_pyservice.pipeline import generate

from tests.conftest import project_request

VALID = project_request().SerializeToString()


def call_main(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[int, bytes, str]:
    stdin, stdout, stderr = io.BytesIO(data), io.BytesIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stdin))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout))
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(sys, "argv", ["protoc-gen-pyservice"])  # as protoc runs it: no arguments
    code = plugin.main()
    return code, stdout.getvalue(), stderr.getvalue()


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=512))
def test_random_bytes(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = call_main(data, monkeypatch)
    assert code in (0, 1)
    if code == 0:
        plugin_pb2.CodeGeneratorResponse.FromString(out)
    else:
        assert len(err.strip().splitlines()) == 1


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=8))
def test_mutated_requests_never_raise(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for offset, value in mutations:
        data[offset] = value
    try:
        request = plugin_pb2.CodeGeneratorRequest.FromString(bytes(data))
    except Exception:
        return
    response = generate(request)
    assert not response.error.startswith("internal error"), response.error
