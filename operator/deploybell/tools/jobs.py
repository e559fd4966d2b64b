"""DeployJobs as `kubectl deploybell` reads and nudges them: get, annotate, wait."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from deploybell.api.constants import GROUP, VERSION
from deploybell.clients.kube import KubeClient
from deploybell.tools.cluster import NotFound

API_VERSION = f"{GROUP}/{VERSION}"


async def get_job(kube: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    job = await kube.get(API_VERSION, "DeployJob", namespace, name)
    if job is None:
        raise NotFound(f"DeployJob {name} not found in namespace {namespace}")
    return job


async def list_jobs(kube: KubeClient, namespace: str | None) -> list[dict[str, Any]]:
    """The DeployJobs of one namespace, or of all (None)."""
    return await kube.list(API_VERSION, "DeployJob", namespace)


def fresh_token() -> str:
    """A new annotation value: readable (when it was asked for) and unique."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


async def annotate(
    kube: KubeClient, namespace: str, name: str, key: str, value: str
) -> dict[str, Any]:
    """Set one annotation with a merge patch (no read-modify-write race with the operator)."""
    await get_job(kube, namespace, name)
    info = await kube.resource(API_VERSION, "DeployJob")
    patch = {"metadata": {"annotations": {key: value}}}
    return await kube.merge_patch(info.path(namespace, name), patch)


async def wait_for(
    kube: KubeClient,
    namespace: str,
    name: str,
    done: Callable[[Mapping[str, Any]], bool],
    seconds: float,
    interval: float = 1.0,
) -> dict[str, Any] | None:
    """Poll until `done(status)`; the object then, or None when `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        job = await get_job(kube, namespace, name)
        if done(job.get("status") or {}):
            return job
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
