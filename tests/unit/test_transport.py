"""The transport's session: kubernetes_asyncio's pool, without a netrc lookup per request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploybell.clients.transport import Transport, environment_proxy

SERVER = "https://127.0.0.1:6443"


def kubeconfig(tmp_path: Path) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": SERVER, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    return str(path)


async def test_the_session_does_not_trust_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    transport = await Transport.from_environment(kubeconfig(tmp_path))
    try:
        rest = transport._api.rest_client
        assert rest.pool_manager.trust_env is False, "else aiohttp reads ~/.netrc per request"
        assert rest.pool_manager.connector.limit == 64
        assert rest.proxy is None
    finally:
        await transport.close()
    assert rest.pool_manager.closed


async def test_the_environments_proxy_still_applies_to_the_api_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    transport = await Transport.from_environment(kubeconfig(tmp_path))
    try:
        assert transport._api.rest_client.proxy == "http://proxy.internal:3128"
    finally:
        await transport.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, None, id="none"),
        pytest.param({"HTTPS_PROXY": "http://p:3128"}, "http://p:3128", id="https"),
        pytest.param({"HTTP_PROXY": "http://p:3128"}, None, id="only-for-http"),
        pytest.param({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "127.0.0.1"}, None, id="bypass"),
    ],
)
def test_environment_proxy(
    env: dict[str, str], expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert environment_proxy(SERVER) == expected
