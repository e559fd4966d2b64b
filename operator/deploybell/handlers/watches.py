"""Label-filtered watches on the workload kinds: fill the watch cache, wake the owning run.

Only kopf indexes and on.event handlers here: daemons and timers would put a finalizer on the
user's objects, which deploybell must never do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from deploybell.api.constants import LABEL_JOB, LABEL_JOB_NAMESPACE
from deploybell.handlers.context import Context, JobKey

# (group, version, plural) of every watched kind; the index id is "<plural>_index".
WATCHED_RESOURCES = (
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("apps", "v1", "daemonsets"),
    ("apps", "v1", "replicasets"),
    ("batch", "v1", "jobs"),
    ("", "v1", "pods"),
)
INDEX_IDS = tuple(f"{plural}_index" for _, _, plural in WATCHED_RESOURCES)
LABELS = {LABEL_JOB: kopf.PRESENT, LABEL_JOB_NAMESPACE: kopf.PRESENT}

_META_KEYS = (
    "name",
    "namespace",
    "uid",
    "generation",
    "labels",
    "annotations",
    "ownerReferences",
    "deletionTimestamp",
    "creationTimestamp",
)
_SPEC_KEYS = (
    "replicas",
    "updateStrategy",
    "progressDeadlineSeconds",
    "completions",
    "parallelism",
    "backoffLimit",
    "suspend",
    "type",
)


def trim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What health evaluation reads; pod templates and managedFields stay out of memory."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in _META_KEYS if k in meta},
        "spec": {k: spec[k] for k in _SPEC_KEYS if k in spec},
        "status": dict(body.get("status") or {}),
    }


def job_key(labels: Mapping[str, str]) -> JobKey:
    return labels[LABEL_JOB_NAMESPACE], labels[LABEL_JOB]


# Handlers are coroutines on purpose: kopf runs plain functions in a thread pool, where setting a
# run's asyncio.Event is not thread-safe, and every event would pay a thread hop.


async def _index(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[JobKey, dict[str, Any]]:
    return {job_key(labels): trim(body)}


async def _wake(labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    context: Context = memo["context"]
    context.wakers.wake(job_key(labels))


for _group, _version, _plural in WATCHED_RESOURCES:
    kopf.index(_group, _version, _plural, labels=LABELS, id=f"{_plural}_index")(_index)
    kopf.on.event(_group, _version, _plural, labels=LABELS, id=f"{_plural}_wake")(_wake)
