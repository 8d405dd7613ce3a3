"""The bounds on what a peer controls, and configuration checked when it is built."""

import math

import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from protoc_gen_pyservice.runtime import bounds, interceptors


def test_short_messages_are_kept_as_they_are() -> None:
    assert bounds.cut_message("no user 'x'") == "no user 'x'"
    exactly = "é" * (bounds.MAX_MESSAGE_BYTES // 2)
    assert bounds.cut_message(exactly) == exactly


@pytest.mark.parametrize("character", ["a", "é", "€", "😀"])
def test_long_messages_are_cut_on_a_character_boundary_and_marked(character: str) -> None:
    cut = bounds.cut_message("no user " + character * 5000)
    assert cut.endswith(bounds.CUT_MARK)
    assert len(cut.encode()) <= bounds.MAX_MESSAGE_BYTES
    kept = cut.removesuffix(bounds.CUT_MARK)
    assert kept.startswith("no user ")
    assert set(kept.removeprefix("no user ")) == {character}
    # as long as fits: one more character would not
    assert len((kept + character + bounds.CUT_MARK).encode()) > bounds.MAX_MESSAGE_BYTES


@pytest.mark.parametrize("length", [1, 1000])
def test_lone_surrogates_come_out_as_text_utf8_can_carry(length: int) -> None:
    cut = bounds.cut_message("\udcff" * length)
    cut.encode("utf-8")
    assert cut.startswith("\\udcff")


def packed(detail: object) -> any_pb2.Any:
    result = any_pb2.Any()
    result.Pack(detail)  # type: ignore[arg-type]
    return result


def test_a_status_that_fits_is_serialized_unchanged() -> None:
    status = status_pb2.Status(code=5, message="gone")
    status.details.append(packed(error_details_pb2.ErrorInfo(reason="GONE")))
    assert bounds.fit_status(status) == status.SerializeToString()


def test_a_huge_bad_request_is_shortened_and_counts_what_it_left_out() -> None:
    request = error_details_pb2.BadRequest()
    for index in range(5000):
        request.field_violations.add(field=f"items[{index}].name", description="too short")
    status = status_pb2.Status(code=3, message="invalid")
    status.details.append(packed(error_details_pb2.ErrorInfo(reason="INVALID")))
    status.details.append(packed(request))
    data = bounds.fit_status(status)
    assert len(data) <= bounds.MAX_DETAILS_BYTES
    fitted = status_pb2.Status.FromString(data)
    info, shortened = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert fitted.details[0].Unpack(info) and info.reason == "INVALID"
    assert fitted.details[1].Unpack(shortened)
    listed = shortened.field_violations[:-1]
    assert [v.field for v in listed] == [f"items[{i}].name" for i in range(len(listed))]
    assert shortened.field_violations[-1].description == f"and {5000 - len(listed)} more violations"


def test_details_that_cannot_fit_are_dropped_and_later_ones_kept() -> None:
    status = status_pb2.Status(code=5, message="gone")
    status.details.append(packed(error_details_pb2.DebugInfo(detail="x" * 10_000)))
    status.details.append(packed(error_details_pb2.ErrorInfo(reason="GONE")))
    fitted = status_pb2.Status.FromString(bounds.fit_status(status))
    assert [d.TypeName() for d in fitted.details] == ["google.rpc.ErrorInfo"]


@pytest.mark.parametrize("given", ["abc-123", "0f" * 16, "trace:span/1.2_3+x", "a" * 128])
def test_safe_request_ids_are_used(given: str) -> None:
    assert bounds.request_id_or_none(given) == given


@pytest.mark.parametrize(
    "given",
    ["", "a" * 129, "abc\nrpc /x OK", "a b", "ü", "x\x00", "id=1", '"', b"bytes", None],
)
def test_unsafe_request_ids_are_refused(given: object) -> None:
    assert bounds.request_id_or_none(given) is None


@pytest.mark.parametrize("text", ["a\nb", "a\rb", "\x1b[31m", "ü", 'say "hi"', "\u2028"])
def test_log_text_escapes_whatever_could_forge_a_line(text: str) -> None:
    escaped = bounds.log_text(text)
    assert escaped.isascii() and escaped.isprintable()
    assert "\n" not in escaped and "\r" not in escaped


def test_log_text_leaves_plain_text_alone() -> None:
    assert bounds.log_text("ipv4:127.0.0.1:5555") == "ipv4:127.0.0.1:5555"


@pytest.mark.parametrize("per_minute", [0, -1, 1 / 1441, math.nan, math.inf, 1e10, "60"])
def test_rate_limits_that_cannot_work_are_refused_when_built(per_minute: object) -> None:
    with pytest.raises(ValueError, match="per_minute"):
        interceptors.RateLimit(per_minute=per_minute)  # type: ignore[arg-type]


@pytest.mark.parametrize("burst", [0, 0.5, -1, math.nan, math.inf])
def test_bursts_below_one_call_are_refused_when_built(burst: float) -> None:
    with pytest.raises(ValueError, match="burst"):
        interceptors.RateLimit(per_minute=60, burst=burst)


def test_a_fractional_rate_still_admits_a_first_call_and_tells_the_true_wait() -> None:
    limit = interceptors.RateLimit(per_minute=0.5)
    buckets = interceptors.TokenBuckets()
    assert buckets.take(("p", ""), limit, now=0.0) == 0
    assert buckets.take(("p", ""), limit, now=0.0) == pytest.approx(120.0)
    assert buckets.take(("p", ""), limit, now=119.0) == pytest.approx(1.0)
    assert buckets.take(("p", ""), limit, now=120.0) == 0


@pytest.mark.parametrize(
    ("per_minute", "expected"),
    [(60, (60, "minute")), (1.5, (1, "minute")), (0.5, (30, "hour")), (1 / 1440, (1, "day"))],
)
def test_rate_limit_info_units_are_whole_numbers(
    per_minute: float, expected: tuple[int, str]
) -> None:
    assert interceptors.RateLimit(per_minute=per_minute).as_unit() == expected


def test_a_bucket_table_needs_room_for_one_key() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        interceptors.TokenBuckets(0)
