"""Errors the Kubernetes client raises, shared by the layers that call it."""

from __future__ import annotations


class ApiError(Exception):
    """The API server said no; `status` is the HTTP code, `reason` its CamelCase reason."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class UnknownKind(ApiError):
    """The API server serves no such apiVersion/kind."""
