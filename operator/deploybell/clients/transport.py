"""The API library behind `KubeClient`: kubernetes_asyncio's configuration and aiohttp transport.

Only its loaders (in-cluster token with refresh, kubeconfig with client certificates, tokens and
exec plugins) and `ApiClient.call_api` are used, with `_preload_content=False`, so responses are
bytes decoded by the caller (orjson) and never turned into generated model objects. Every
identity shares this one connection pool: impersonation is a request header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from deploybell.api.kubeconfig import KubeConfig
from deploybell.clients.errors import CertificateInvalid, Unreachable

USER_AGENT = "deploybell/0.1.0"
REQUEST_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
POOL_SIZE = 64
APPLY_PATCH = "application/apply-patch+yaml"
"""Requests in flight at once to the API server (aiohttp's connection limit)."""


class ConfigError(Exception):
    """No usable cluster configuration (neither in-cluster nor a kubeconfig)."""


class Transport:
    """One authenticated connection pool to one API server."""

    def __init__(self, api: Any) -> None:
        self._api = api
        self._inherited: aiohttp.ClientSession | None = None

    @classmethod
    async def from_environment(
        cls, kubeconfig: str | None = None, user_agent: str = USER_AGENT
    ) -> Transport:
        """In a pod its ServiceAccount; else `kubeconfig`, $KUBECONFIG or ~/.kube/config."""
        configuration = k8s.Configuration()
        try:
            if kubeconfig or not os.environ.get("KUBERNETES_SERVICE_HOST"):
                raise k8s_config.ConfigException("not in a pod")
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except k8s_config.ConfigException:
            try:
                await k8s_config.load_kube_config(
                    config_file=kubeconfig, client_configuration=configuration
                )
            except (k8s_config.ConfigException, OSError, TypeError) as e:
                raise ConfigError(str(e)) from e
        configuration.connection_pool_maxsize = POOL_SIZE
        api = k8s.ApiClient(configuration)
        api.user_agent = user_agent
        transport = cls(api)
        transport._without_netrc_lookups()
        return transport

    def _without_netrc_lookups(self) -> None:
        """kubernetes_asyncio's session trusts the environment, and so aiohttp looks ~/.netrc up
        in a thread of the default executor before every request without `auth` (all of ours):
        a thread hop per API call, 15% of the operator's CPU samples in a burst of 1000 runs.
        The same pooled connections, through a session that does not; the environment's proxy
        for the API server, the one thing trusting it gave besides netrc, is read once here."""
        rest = self._api.rest_client
        self._inherited = rest.pool_manager  # owns the connector: closed last, in close()
        rest.pool_manager = aiohttp.ClientSession(
            connector=self._inherited.connector,
            connector_owner=False,
            trust_env=False,
            read_bufsize=2**21,  # as kubernetes_asyncio's: watch events of large objects
        )
        if not rest.proxy:
            rest.proxy = environment_proxy(self.host)

    @classmethod
    def for_target(cls, config: KubeConfig, user_agent: str = USER_AGENT) -> Transport:
        """A pool to another cluster from a checked kubeconfig (`api.kubeconfig`): no loader, no
        plugin and no file of this pod is involved. Certificates reach OpenSSL, which loads only
        from paths, through anonymous in-memory files (memfd) that are closed right after."""
        configuration = k8s.Configuration()
        configuration.host = config.server
        configuration.verify_ssl = not config.insecure
        configuration.tls_server_name = config.tls_server_name or None
        configuration.connection_pool_maxsize = POOL_SIZE
        if config.token:
            configuration.api_key = {"BearerToken": f"Bearer {config.token}"}
        client_pem = config.client_cert_pem + b"\n" + config.client_key_pem
        with (
            _memory_file("ca", config.ca_pem) as ca,
            _memory_file("client", client_pem if config.client_cert_pem else b"") as client,
        ):
            configuration.ssl_ca_cert = ca
            configuration.cert_file = client
            try:
                api = k8s.ApiClient(configuration)
            except (ssl.SSLError, OSError) as e:
                what = "client certificate and key" if client else "certificate authority"
                raise ConfigError(f"the {what} cannot be loaded: {e.__class__.__name__}") from e
        api.user_agent = user_agent
        transport = cls(api)
        transport._without_netrc_lookups()
        return transport

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    async def close(self) -> None:
        await self._api.close()
        if self._inherited is not None:
            await self._inherited.close()

    async def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Any,
        content_type: str,
        headers: Mapping[str, str],
        read_timeout: float = REQUEST_TIMEOUT,
    ) -> tuple[int, bytes, float]:
        """(HTTP status, body, Retry-After seconds) of one request; `Unreachable` without one."""
        try:
            response = await self._call(
                method, path, query, body, content_type, headers, _timeouts(read_timeout)
            )
            async with response:
                data = await response.read()
                return response.status, data, _retry_after(response.headers)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise _unreachable(e) from e

    async def stream(
        self, path: str, query: Mapping[str, str], idle_timeout: float
    ) -> AsyncIterator[bytes]:
        """The lines of a streamed response (a watch), until the server closes it."""
        try:
            response = await self._call(
                "GET", path, query, None, "application/json", {}, _timeouts(idle_timeout)
            )
            async with response:
                if response.status != 200:
                    yield await response.read()  # a Status object: the caller raises it
                    return
                async for line in response.content:
                    if line.strip():
                        yield line
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise _unreachable(e) from e

    async def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Any,
        content_type: str,
        headers: Mapping[str, str],
        timeouts: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        if body is not None and content_type == APPLY_PATCH:
            body, content_type = self._utf8_apply(body)
        response = await self._api.call_api(
            path,
            method,
            query_params=list(query.items()),
            header_params={"Content-Type": content_type, "Accept": "application/json", **headers},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeouts,
        )
        assert isinstance(response, aiohttp.ClientResponse)
        return response

    def _utf8_apply(self, body: Any) -> tuple[bytes, str]:
        """A server-side apply body as `apply_body` writes it. The library passes bytes through
        when the media type has a parameter (the API server drops it), else it would write the
        body with `json.dumps`, whose surrogate pairs the server refuses (see `apply_body`)."""
        data = self._api.sanitize_for_serialization(body)
        return apply_body(data), f"{APPLY_PATCH}; charset=utf-8"


# What the API server's YAML reader takes raw inside a quoted string: printable characters that
# are not line breaks (NEL, LS and PS are, and a raw break in a quoted scalar is folded to a space).
_NOT_YAML_SAFE = re.compile(
    "[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def apply_body(data: Any) -> bytes:
    """JSON (a YAML subset) in UTF-8, as kubectl sends an apply. `json.dumps` alone escapes a
    character outside the BMP (an emoji) as a surrogate pair, which the API server's YAML parser
    refuses ("found invalid Unicode character escape code"); with `ensure_ascii=False` it would
    write control characters and line breaks other than \\n raw, which YAML refuses or folds.
    So: UTF-8 for what YAML reads as written, a \\u escape (always in the BMP) for the rest."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return _NOT_YAML_SAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


def kubeconfig_namespace() -> str | None:
    """The current kubeconfig context's namespace (what kubectl uses), None when it has none."""
    try:
        _, current = k8s_config.list_kube_config_contexts()
    except (k8s_config.ConfigException, OSError, TypeError):
        return None
    namespace = ((current or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else None


def environment_proxy(url: str) -> str | None:
    """The proxy HTTPS_PROXY/HTTP_PROXY name for `url`, unless NO_PROXY exempts its host."""
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.netloc):
        return None
    return proxy


def _timeouts(read_seconds: float) -> aiohttp.ClientTimeout:
    """Connecting and each read are bounded; waiting for a free connection of the pool is not
    (a burst of runs queues there, and that is no reason to give up on the API server)."""
    return aiohttp.ClientTimeout(
        total=None, connect=None, sock_connect=CONNECT_TIMEOUT, sock_read=read_seconds
    )


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return max(float(headers.get("Retry-After") or 1), 0.0)
    except ValueError:
        return 1.0


@contextlib.contextmanager
def _memory_file(name: str, content: bytes) -> Iterator[str | None]:
    """A path to `content` that lives only in memory (Linux memfd); None for no content."""
    if not content:
        yield None
        return
    fd = os.memfd_create(f"deploybell-{name}", os.MFD_CLOEXEC)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _unreachable(error: BaseException) -> Unreachable | CertificateInvalid:
    if isinstance(error, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        reason = getattr(error, "certificate_error", error)
        return CertificateInvalid(
            "CertificateInvalid", f"the API server's TLS certificate does not verify: {reason}"
        )
    return Unreachable("Unreachable", _describe(error))


def _describe(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return "the API server did not answer in time"
    return f"cannot reach the API server: {type(error).__name__}: {error}"
