"""kopf glue for Notifications: index them for delivery, report their readiness in status.

Ready=True once the spec is valid, its template compiles and renders for a sample message of every
event, and its Secret holds the keys the type needs. Secrets are watched, so fixing a Secret fixes
Ready; no message is sent to check.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from deploybell.api.constants import GROUP, VERSION
from deploybell.api.errors import SpecError
from deploybell.clients.errors import ApiError, NotFound
from deploybell.clients.kube import KubeClient
from deploybell.deploy.live import utcnow
from deploybell.handlers.context import Context
from deploybell.notify import providers as registry
from deploybell.notify.template import TemplateError, compile_template, sample_failures

logger = logging.getLogger("deploybell.notifications")


@kopf.index(GROUP, VERSION, "notifications", id="notifications_index")  # type: ignore[arg-type]
async def index_notifications(
    namespace: str, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, name): dict(spec)}


async def readiness(
    kube: KubeClient, namespace: str, spec: Mapping[str, Any]
) -> tuple[bool, str, str]:
    """(ready, reason, message) of a Notification."""
    try:
        parsed = registry.parse(spec)
        template = compile_template(parsed.template)
    except (SpecError, TemplateError) as e:
        return False, "InvalidSpec", str(e)
    failures = sample_failures(template)
    if failures:
        return False, "InvalidTemplate", "; ".join(map(str, failures))
    problems = registry.recipient_errors(parsed.type, parsed.recipients)
    if problems:
        return False, "InvalidRecipients", "; ".join(problems)
    if parsed.secret_name:
        secret = await kube.get("v1", "Secret", namespace, parsed.secret_name)
        keys = (
            set((secret.get("data") or {}) | (secret.get("stringData") or {})) if secret else None
        )
        problem = registry.TYPES[parsed.type].rules.secret_problem(
            parsed.secret_name, sorted(keys) if keys is not None else None, parsed.recipients
        )
        if problem:
            return False, "SecretNotReady", problem
    count = len(parsed.recipients)
    return True, "Valid", f"{parsed.type} notification, {count} recipient{'s' * (count != 1)}"


async def report_readiness(kube: KubeClient, body: Mapping[str, Any]) -> None:
    """Patch status.conditions[Ready] when it changed; a Warning Event when it is not ready."""
    meta, status = body["metadata"], body.get("status") or {}
    generation = int(meta.get("generation") or 0)
    ok, reason, message = await readiness(kube, meta["namespace"], body.get("spec") or {})
    current = {c.get("type"): c for c in status.get("conditions") or []}.get("Ready") or {}
    wanted = "True" if ok else "False"
    unchanged = current.get("status") == wanted and current.get("message") == message
    if status.get("observedGeneration") == generation and unchanged:
        return
    condition = {
        "type": "Ready",
        "status": wanted,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": current.get("lastTransitionTime")
        if current.get("status") == wanted
        else utcnow(),
    }
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{meta['namespace']}/notifications/{meta['name']}"
    patch = {"status": {"observedGeneration": generation, "conditions": [condition]}}
    try:
        await kube.merge_patch(path, patch, "status")
    except NotFound:  # deleted meanwhile (e.g. with its namespace): nothing to report
        return
    if not ok:
        await _warn(kube, body, reason, message)


async def _warn(kube: KubeClient, body: Mapping[str, Any], reason: str, message: str) -> None:
    """A Warning Event; none when the namespace is going (with the Notification in it)."""
    try:
        await kube.post_event(body, "Warning", reason, message)
    except ApiError as e:  # Events help but are not essential: say so, carry on
        logger.warning("cannot record the Event %s on the Notification: %s", reason, e.message)


def reports_readiness(context: Context) -> bool:
    """Every shard reads Notifications and Secrets; only the default one (no --shard-key)
    writes the Notifications' status and Events, so that they are written once."""
    return not context.settings.shard_key


@kopf.on.event(GROUP, VERSION, "notifications", id="readiness")  # type: ignore[arg-type]
async def on_notification(
    body: kopf.Body,
    meta: kopf.Meta,
    memo: kopf.Memo,
    type: str | None,
    notifications_index: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    context: Context = memo["context"]
    context.notifications.index = notifications_index
    # Deliveries waiting for this Notification (GitOps tools apply in any order) go now.
    context.wakers.wake_namespace(str(meta["namespace"]))
    if type == "DELETED" or meta.get("deletionTimestamp") or not reports_readiness(context):
        return
    await report_readiness(context.kube, body)


def _is_referenced(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> bool:
    """A Notification names this Secret, or a copy of it is kept (which must follow every change,
    also after the Notification is gone and comes back)."""
    context: Context | None = memo.get("context")
    if context is None:
        return False
    if context.notifications.keeps_secret(namespace, name):
        return True
    return any(
        ns == namespace and (spec.get("secretRef") or {}).get("name") == name
        for (ns, _), specs in context.notifications.index.items()
        for spec in specs
    )


@kopf.on.event("", "v1", "secrets", id="secret-readiness", when=_is_referenced)  # type: ignore[arg-type]
async def on_secret(
    namespace: str, name: str, type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    context: Context = memo["context"]
    context.notifications.remember_secret(namespace, name, None if type == "DELETED" else body)
    context.wakers.wake_namespace(namespace)  # e.g. a rotated kubeconfig (spec.cluster)
    if not reports_readiness(context):
        return
    for (ns, notification), specs in list(context.notifications.index.items()):
        if ns != namespace or not any(
            (s.get("secretRef") or {}).get("name") == name for s in specs
        ):
            continue
        found = await context.kube.get(f"{GROUP}/{VERSION}", "Notification", ns, notification)
        if found is not None:
            await report_readiness(context.kube, found)
