"""Errors that reach a client, and the one mapping from them to gRPC codes and HTTP statuses.

    KlambdaError                         (name, HTTP status, gRPC code)
    ├── ResourceNotFound                 ResourceNotFoundException        404 NOT_FOUND
    ├── InvalidRequestContent            InvalidRequestContentException   400 INVALID_ARGUMENT
    ├── InvalidParameterValue            InvalidParameterValueException   400 INVALID_ARGUMENT
    ├── RequestTooLarge                  RequestEntityTooLargeException   413 INVALID_ARGUMENT
    ├── MalformedQuery                   MalformedQueryException          400 INVALID_ARGUMENT
    ├── ResourceConflict                 ResourceConflictException        409 FAILED_PRECONDITION
    ├── TooManyRequests                  TooManyRequestsException         429 RESOURCE_EXHAUSTED
    ├── RecursiveInvocation              RecursiveInvocationException     400 FAILED_PRECONDITION
    ├── UnrecognizedClient               UnrecognizedClientException      403 UNAUTHENTICATED
    ├── InvalidSignature                 InvalidSignatureException        403 UNAUTHENTICATED
    ├── AccessDenied                     AccessDeniedException            403 PERMISSION_DENIED
    └── ServiceUnavailable               ServiceException                 503 UNAVAILABLE

The names are Lambda's, so boto3 raises the exception class a Lambda user expects.
"""

from __future__ import annotations

from typing import Any, ClassVar

import grpc


class KlambdaError(Exception):
    code: ClassVar[str] = "ServiceException"
    http_status: ClassVar[int] = 500
    grpc_status: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Type": "User", "message": self.message}
        if self.reason:
            out["Reason"] = self.reason
        return out


class ResourceNotFound(KlambdaError):
    code = "ResourceNotFoundException"
    http_status = 404
    grpc_status = grpc.StatusCode.NOT_FOUND


class InvalidRequestContent(KlambdaError):
    code = "InvalidRequestContentException"
    http_status = 400
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT


class InvalidParameterValue(KlambdaError):
    code = "InvalidParameterValueException"
    http_status = 400
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT


class MalformedQuery(KlambdaError):
    """A Logs Insights query or a filter pattern with a mistake (CloudWatch Logs' name)."""

    code = "MalformedQueryException"
    http_status = 400
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT


class RequestTooLarge(KlambdaError):
    code = "RequestEntityTooLargeException"
    http_status = 413
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT


class ResourceConflict(KlambdaError):
    code = "ResourceConflictException"
    http_status = 409
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION


class TooManyRequests(KlambdaError):
    code = "TooManyRequestsException"
    http_status = 429
    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED


class RecursiveInvocation(KlambdaError):
    code = "RecursiveInvocationException"
    http_status = 400
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION


class UnrecognizedClient(KlambdaError):
    """No credentials, or credentials no one issued (an unknown key, an invalid token)."""

    code = "UnrecognizedClientException"
    http_status = 403
    grpc_status = grpc.StatusCode.UNAUTHENTICATED


class InvalidSignature(KlambdaError):
    """A known access key whose SigV4 signature does not match, or has expired."""

    code = "InvalidSignatureException"
    http_status = 403
    grpc_status = grpc.StatusCode.UNAUTHENTICATED


class AccessDenied(KlambdaError):
    """An identity that may not do what it asked (a SubjectAccessReview said no)."""

    code = "AccessDeniedException"
    http_status = 403
    grpc_status = grpc.StatusCode.PERMISSION_DENIED


class ServiceUnavailable(KlambdaError):
    code = "ServiceException"
    http_status = 503
    grpc_status = grpc.StatusCode.UNAVAILABLE


BY_CODE: dict[str, type[KlambdaError]] = {
    cls.code: cls
    for cls in (
        ResourceNotFound,
        InvalidRequestContent,
        InvalidParameterValue,
        RequestTooLarge,
        ResourceConflict,
        TooManyRequests,
        RecursiveInvocation,
        UnrecognizedClient,
        InvalidSignature,
        AccessDenied,
        ServiceUnavailable,
    )
}
