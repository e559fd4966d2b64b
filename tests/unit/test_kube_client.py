"""KubeClient: impersonation over one shared connection pool; API errors as kinds."""

from __future__ import annotations

from typing import Any

import pytest

from deploybell.clients.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    ServerError,
    TooManyRequests,
    Unreachable,
    error_for,
)
from deploybell.clients.kube import KubeClient


class RecordingTransport:
    """Answers every request with one canned (status, body); records the headers sent."""

    def __init__(self, status: int = 200, body: bytes = b"{}") -> None:
        self.status, self.body = status, body
        self.headers: list[dict[str, str]] = []

    async def request(self, method: str, path: str, query: Any, body: Any, content_type: str,
                      headers: dict[str, str]) -> tuple[int, bytes, float]:  # fmt: skip
        self.headers.append(dict(headers))
        return self.status, self.body, 3.0


def client(transport: RecordingTransport) -> KubeClient:
    return KubeClient(transport)  # type: ignore[arg-type]


def test_none_is_the_operator_itself() -> None:
    kube = client(RecordingTransport())
    assert kube.impersonating(None) is kube


async def test_impersonation_is_a_header_on_the_same_transport() -> None:
    transport = RecordingTransport()
    kube = client(transport)
    deployer = kube.impersonating("system:serviceaccount:team-a:deployer")
    assert deployer.user == "system:serviceaccount:team-a:deployer"
    assert deployer.transport is kube.transport, "every identity shares one connection pool"
    await kube.request("GET", "/api/v1/namespaces")
    await deployer.request("GET", "/api/v1/namespaces")
    assert transport.headers == [{}, {"Impersonate-User": "system:serviceaccount:team-a:deployer"}]
    assert deployer.impersonating(None).user is None


@pytest.mark.parametrize(
    ("status", "kind", "transient"),
    [
        (403, Forbidden, False),
        (404, NotFound, False),
        (409, Conflict, False),
        (410, Gone, False),
        (429, TooManyRequests, True),
        (500, ServerError, True),
        (503, ServerError, True),
        (418, ApiError, False),
    ],
)
async def test_errors_are_kinds(status: int, kind: type[ApiError], transient: bool) -> None:
    body = b'{"kind":"Status","reason":"Why","message":"what happened"}'
    kube = client(RecordingTransport(status, body))
    with pytest.raises(kind) as caught:
        await kube.request("GET", "/api/v1/namespaces/x")
    assert type(caught.value) is kind
    assert caught.value.transient is transient
    assert (caught.value.reason, caught.value.message, caught.value.status) == (
        "Why",
        "what happened",
        status,
    )


def test_a_typed_patch_error_is_not_transient() -> None:
    error = error_for(500, "InternalError", "failed to create typed patch object (...)")
    assert isinstance(error, ServerError)
    assert not error.transient


def test_retry_after_and_unreachable() -> None:
    error = error_for(429, "TooManyRequests", "slow down", retry_after=7)
    assert isinstance(error, TooManyRequests)
    assert error.retry_after == 7
    assert Unreachable("Unreachable", "refused").transient


async def test_a_body_that_is_not_json_still_gives_a_message() -> None:
    kube = client(RecordingTransport(502, b"<html>bad gateway</html>"))
    with pytest.raises(ServerError, match="bad gateway"):
        await kube.request("GET", "/healthz")
