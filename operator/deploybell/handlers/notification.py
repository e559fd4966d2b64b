"""kopf glue for Notifications: index them for delivery, report their validity in status."""

from __future__ import annotations

from typing import Any

import kopf

from deploybell.api.constants import GROUP, VERSION
from deploybell.api.errors import SpecError
from deploybell.api.notification import parse_notification, recipient_errors
from deploybell.clients.kube import KubeClient
from deploybell.deploy.runner import utcnow
from deploybell.handlers.context import Context


@kopf.index(GROUP, VERSION, "notifications", id="notifications_index")  # type: ignore[arg-type]
def index_notifications(
    namespace: str, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, name): dict(spec)}


def validity(spec: kopf.Spec) -> tuple[bool, str, str]:
    try:
        parsed = parse_notification(spec)
    except SpecError as e:
        return False, "InvalidSpec", str(e)
    problems = recipient_errors(parsed.type, parsed.recipients)
    if problems:
        return False, "InvalidRecipients", "; ".join(problems)
    return True, "Valid", f"{parsed.type} notification with {len(parsed.recipients)} recipients"


@kopf.on.event(GROUP, VERSION, "notifications", id="validate")
async def report_validity(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    memo: kopf.Memo,
    type: str | None,
    **_: Any,
) -> None:
    context: Context = memo["context"]
    # Deliveries waiting for this Notification (GitOps tools apply in any order) go now.
    context.wakers.wake_namespace(str(meta["namespace"]))
    if type == "DELETED" or meta.get("deletionTimestamp"):
        return
    generation = int(meta.get("generation") or 0)
    ok, reason, message = validity(spec)
    current = {c.get("type"): c for c in status.get("conditions") or []}.get("Ready") or {}
    wanted = "True" if ok else "False"
    if (
        status.get("observedGeneration") == generation
        and current.get("status") == wanted
        and current.get("message") == message
    ):
        return
    kube: KubeClient = context.kube
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
    await kube.merge_patch(
        path, {"status": {"observedGeneration": generation, "conditions": [condition]}}, "status"
    )
    if not ok:
        kopf.event(body, type="Warning", reason=reason, message=message)
