"""The transport's session: kubernetes_asyncio's pool, without a netrc lookup per request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from deploybell.clients.kube import FIELD_MANAGER
from deploybell.clients.transport import Transport, environment_proxy

SERVER = "https://127.0.0.1:6443"


def kubeconfig(tmp_path: Path, server: str = SERVER) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
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


LAUNCH = "launch 🚀 done · 中文 · שלום · é ✅ · tab\t bell\x07 del\x7f nel\x85 ls\u2028 bom\ufeff"


async def test_an_apply_goes_out_in_utf8_without_surrogate_escapes(tmp_path: Path) -> None:
    """The API server reads an apply body with a YAML parser, which refuses the surrogate pairs
    `json.dumps` writes for an emoji; kubectl sends UTF-8 (here: what reaches a local server)."""
    seen: dict[str, Any] = {}

    async def patch(request: web.Request) -> web.Response:
        seen["type"] = request.headers["Content-Type"]
        seen["body"] = await request.read()
        return web.json_response({})

    app = web.Application()
    app.router.add_patch("/api/v1/namespaces/a/configmaps/x", patch)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": LAUNCH}}
    transport = await Transport.from_environment(
        kubeconfig(tmp_path, f"http://127.0.0.1:{server.port}")
    )
    try:
        status, _, _ = await transport.request(
            "PATCH",
            "/api/v1/namespaces/a/configmaps/x",
            {"fieldManager": FIELD_MANAGER},
            manifest,
            "application/apply-patch+yaml",
            {},
        )
    finally:
        await transport.close()
        await server.close()
    assert status == 200
    assert seen["type"].split(";")[0] == "application/apply-patch+yaml"  # the server's split
    text = seen["body"].decode("utf-8", errors="strict")
    assert all(word in text for word in ("🚀", "中文", "שלום")), text
    assert "\\ud83d" not in text.lower(), text
    assert yaml.safe_load(text) == manifest
