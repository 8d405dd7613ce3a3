"""Exceptions a handler raises to answer with a status code (and details), one per code."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

import grpc
import grpc.aio
from google.protobuf import any_pb2, symbol_database
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from protoc_gen_pyservice.runtime import bounds

M = TypeVar("M", bound=Message)
logger = logging.getLogger("protoc_gen_pyservice.errors")

# grpcio-status' trailer for a serialized google.rpc.Status.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class ServiceError(Exception):
    """An RPC failure with a status code, a message for the caller and typed details.

    Raise a subclass from a handler: the generated adapter answers with its code and puts the
    details into a google.rpc.Status in the `grpc-status-details-bin` trailer.
    """

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str = "", details: Iterable[Message] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details: tuple[Message, ...] = tuple(details)

    # Set by from_rpc_error() only: a class default, so subclasses need not call __init__.
    _rpc_error: grpc.aio.AioRpcError | None = None

    @property
    def rpc_error(self) -> grpc.aio.AioRpcError:
        """The failed call this error was decoded from: every error a generated client raises
        has one (for a request it refused to send, see as_received()). LookupError for an
        error raised in this process, which no call ended with."""
        if self._rpc_error is None:
            raise LookupError(
                f"this {type(self).__name__} was raised in this process, not received as the "
                "outcome of a call, so it has no rpc_error"
            )
        return self._rpc_error

    def detail(self, detail_type: type[M]) -> M | None:
        """The first detail of a type: `error.detail(error_details_pb2.ErrorInfo)`."""
        for detail in self.details:
            if isinstance(detail, detail_type):
                return detail
        return None

    @property
    def error_info(self) -> error_details_pb2.ErrorInfo | None:
        return self.detail(error_details_pb2.ErrorInfo)

    @property
    def bad_request(self) -> error_details_pb2.BadRequest | None:
        return self.detail(error_details_pb2.BadRequest)

    @property
    def retry_info(self) -> error_details_pb2.RetryInfo | None:
        return self.detail(error_details_pb2.RetryInfo)

    @property
    def quota_failure(self) -> error_details_pb2.QuotaFailure | None:
        return self.detail(error_details_pb2.QuotaFailure)

    @property
    def resource_info(self) -> error_details_pb2.ResourceInfo | None:
        return self.detail(error_details_pb2.ResourceInfo)

    @property
    def precondition_failure(self) -> error_details_pb2.PreconditionFailure | None:
        return self.detail(error_details_pb2.PreconditionFailure)

    def to_status(self) -> status_pb2.Status:
        """This error as a google.rpc.Status, details packed into Any."""
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        for detail in self.details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        return status


class Cancelled(ServiceError):
    code = grpc.StatusCode.CANCELLED


class Unknown(ServiceError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(ServiceError):
    code = grpc.StatusCode.ABORTED


class OutOfRange(ServiceError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(ServiceError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(ServiceError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(ServiceError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE: dict[grpc.StatusCode, type[ServiceError]] = {
    error.code: error
    for error in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}


def from_rpc_error(error: grpc.aio.AioRpcError) -> ServiceError:
    """The typed exception for a failed call, details decoded; `.rpc_error` keeps the original.

    Details whose message types this process does not know stay packed as google.protobuf.Any.
    """
    code = error.code()
    typed = _BY_CODE.get(code, Unknown)(error.details() or "", _decode_details(error))
    typed._rpc_error = error
    return typed


def reply(error: ServiceError) -> tuple[str, bytes | None]:
    """What a server answers for `error`: its message cut to bounds.MAX_MESSAGE_BYTES, and its
    details as a serialized google.rpc.Status cut to bounds.MAX_DETAILS_BYTES (None without
    details), so the reply fits any peer's metadata limit and the client sees the real code."""
    message = bounds.cut_message(error.message)
    if not error.details:
        return message, None
    status = error.to_status()
    status.message = message
    return message, bounds.fit_status(status)


def as_received(error: ServiceError, why: str) -> ServiceError:
    """`error` as a caller gets it when a server answers with it: from_rpc_error() of a call
    made up of that reply (code, cut message, the same grpc-status-details-bin trailer), so
    code handling errors cannot tell it from a real answer. `why` becomes the call's
    debug_error_string, for logs."""
    message, status = reply(error)
    trailers = (
        grpc.aio.Metadata() if status is None else grpc.aio.Metadata((STATUS_DETAILS_KEY, status))
    )
    return from_rpc_error(
        grpc.aio.AioRpcError(error.code, grpc.aio.Metadata(), trailers, message, why)
    )


def _decode_details(error: grpc.aio.AioRpcError) -> list[Message]:
    trailers: Any = error.trailing_metadata() or ()
    raw = next((value for key, value in trailers if key == STATUS_DETAILS_KEY), None)
    if not isinstance(raw, bytes):
        return []
    try:
        status = status_pb2.Status.FromString(raw)
    except DecodeError:
        return []
    details: list[Message] = []
    database = symbol_database.Default()
    for packed in status.details:
        type_name = packed.TypeName()
        try:
            message_class = database.GetSymbol(type_name)
        except KeyError:
            details.append(packed)
            continue
        detail = message_class()
        packed.Unpack(detail)
        details.append(detail)
    return details


Translation = Callable[[BaseException], ServiceError]


class ErrorMap:
    """Which domain exceptions answer with which status, declared once for a server.

    `ErrorMap({UserNotFound: NotFound, UserExists: lambda e: AlreadyExists(str(e), [...])})`:
    a value is a ServiceError class (built with the exception's text) or a function returning
    the ServiceError. Subclasses match through their base classes. `validation_detail` names a
    message type shaped like common.v1.ValidationError that invalid requests carry beside
    google.rpc.BadRequest; `rate_limit_detail` one shaped like common.v1.RateLimitInfo.
    """

    def __init__(
        self,
        mapping: Mapping[type[BaseException], type[ServiceError] | Translation] | None = None,
        *,
        validation_detail: type[Message] | None = None,
        rate_limit_detail: type[Message] | None = None,
    ) -> None:
        self._mapping: dict[type[BaseException], Translation] = {}
        for exception_type, target in (mapping or {}).items():
            self.register(exception_type, target)
        self.validation_detail = validation_detail
        self.rate_limit_detail = rate_limit_detail

    def register(
        self, exception_type: type[BaseException], target: type[ServiceError] | Translation
    ) -> None:
        if isinstance(target, type) and issubclass(target, ServiceError):
            error_class = target
            self._mapping[exception_type] = lambda exception: error_class(str(exception))
        else:
            self._mapping[exception_type] = target  # type: ignore[assignment]

    def translate(self, exception: BaseException) -> ServiceError | None:
        for base in type(exception).__mro__:
            translation = self._mapping.get(base)
            if translation is not None:
                return translation(exception)
        return None


NO_ERROR_MAP = ErrorMap()


def internal_error(exception: BaseException, method: str, request_id: str) -> Internal:
    """INTERNAL for a bug in a handler: the caller learns only the request id; the log gets
    everything, under that id."""
    logger.error(
        "unhandled %s in %s (request id %s)",
        type(exception).__name__,
        method,
        request_id,
        exc_info=exception,
    )
    return Internal(
        f"internal error; request id {request_id}",
        [error_details_pb2.RequestInfo(request_id=request_id)],
    )
