"""Exceptions a handler raises to answer with a status code (and details), one per code."""

from collections.abc import Iterable
from typing import ClassVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

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
