"""How the online tools reach the cluster: the kubeconfig's namespace, a client, and errors
turned into one line and an exit code."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from deploybell.clients.errors import ApiError, Unreachable
from deploybell.clients.kube import KubeClient
from deploybell.clients.transport import ConfigError, kubeconfig_namespace
from deploybell.tools.status import Exit

_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class NotFound(LookupError):
    """The object a command names does not exist; the message says which."""


def default_namespace() -> str:
    """The current kubeconfig context's namespace (what kubectl uses), else "default"."""
    namespace = kubeconfig_namespace()
    if namespace is None and _IN_CLUSTER_NAMESPACE.exists():
        namespace = _IN_CLUSTER_NAMESPACE.read_text().strip()
    return str(namespace or "default")


def run(command: Callable[[KubeClient], Coroutine[Any, Any, int]]) -> int:
    """Run one online command; a missing object or an unreachable cluster is one line on stderr."""

    async def connected() -> int:
        kube = await KubeClient.from_environment()
        try:
            return await command(kube)
        finally:
            await kube.close()

    try:
        return asyncio.run(connected())
    except NotFound as e:
        return _fail(Exit.NOT_FOUND, str(e))
    except Unreachable as e:
        return _fail(Exit.UNREACHABLE, f"cannot reach the cluster: {e.message}")
    except ApiError as e:
        return _fail(Exit.UNREACHABLE, f"the API server said: {e}")
    except ConfigError as e:
        return _fail(Exit.UNREACHABLE, f"no cluster configured (KUBECONFIG): {e}")
    except OSError as e:
        return _fail(Exit.UNREACHABLE, f"cannot reach the cluster: {type(e).__name__}: {e}")


def _fail(code: Exit, message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return int(code)
