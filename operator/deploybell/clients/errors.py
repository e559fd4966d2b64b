"""Errors from the Kubernetes API as kinds: callers catch `NotFound`, not `status == 404`."""

from __future__ import annotations


class ApiError(Exception):
    """The API server said no (or could not be reached); `reason` is its CamelCase reason.

    `status` is kept for messages only; decide by the class (or `transient`).
    """

    status = 0
    cluster = ""
    """The target cluster's API server that said so; "" for the operator's own cluster."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        if status is not None:
            self.status = status

    @property
    def transient(self) -> bool:
        """Worth retrying as it is: the server was unreachable, overloaded or failing."""
        return False

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}" if self.status else self.message


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class UnknownKind(NotFound):
    """The API server serves no such apiVersion/kind."""


class Conflict(ApiError):
    """409: a resourceVersion precondition failed, or the object already exists."""

    status = 409


class Gone(ApiError):
    """410: a watch or list asked for a resourceVersion the server no longer has."""

    status = 410


class Invalid(ApiError):
    """422: the object failed validation."""

    status = 422


class TooManyRequests(ApiError):
    status = 429

    def __init__(
        self, reason: str, message: str, status: int | None = None, retry_after: float = 1.0
    ) -> None:
        super().__init__(reason, message, status)
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return True


class ServerError(ApiError):
    """5xx. Server-side apply answers 500 for a field of the wrong type, which is not transient:
    see `typed_patch_error`."""

    status = 500

    @property
    def transient(self) -> bool:
        return not self.typed_patch_error

    @property
    def typed_patch_error(self) -> bool:
        return "failed to create typed patch object" in self.message


class Unreachable(ApiError):
    """No answer: connection refused, reset, TLS failure or timeout."""

    status = 0

    @property
    def transient(self) -> bool:
        return True


class CertificateInvalid(ApiError):
    """The server's TLS certificate does not verify against the trusted CAs: not transient."""

    status = 0


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def error_for(status: int, reason: str, message: str, retry_after: float = 1.0) -> ApiError:
    """The kind of error an HTTP status (with the server's reason and message) means."""
    if status == 429:
        return TooManyRequests(reason, message, status, retry_after)
    if status >= 500:
        return ServerError(reason, message, status)
    kind = _BY_STATUS.get(status, ApiError)
    return kind(reason, message, status)
