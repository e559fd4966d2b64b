"""How the online tools reach the cluster: the kubeconfig's namespace, a client, and errors
turned into one line and an exit code."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import config as k8s_config

from deploybell.clients.errors import ApiError
from deploybell.clients.kube import KubeClient
from deploybell.tools.status import Exit

_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class NotFound(LookupError):
    """The object a command names does not exist; the message says which."""


def default_namespace() -> str:
    """The current kubeconfig context's namespace (what kubectl uses), else "default"."""
    try:
        _, current = k8s_config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        namespace = (current or {}).get("context", {}).get("namespace")
    except (k8s_config.ConfigException, OSError, TypeError):
        namespace = None
        if _IN_CLUSTER_NAMESPACE.exists():
            namespace = _IN_CLUSTER_NAMESPACE.read_text().strip()
    return str(namespace or "default")


def run(command: Callable[[KubeClient], Coroutine[Any, Any, int]]) -> int:
    """Run one online command; a missing object or an unreachable cluster is one line on stderr."""
    try:
        kube = KubeClient.from_environment()
        return asyncio.run(command(kube))
    except NotFound as e:
        return _fail(Exit.NOT_FOUND, str(e))
    except ApiError as e:
        return _fail(Exit.UNREACHABLE, f"the API server said: {e.status} {e.reason}: {e.message}")
    except k8s_config.ConfigException as e:
        return _fail(Exit.UNREACHABLE, f"no cluster configured (KUBECONFIG): {e}")
    except (urllib3.exceptions.HTTPError, OSError) as e:
        return _fail(Exit.UNREACHABLE, f"cannot reach the cluster: {type(e).__name__}: {e}")


def _fail(code: Exit, message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return int(code)
