"""Builders and waits for DeployJobs and Notifications in integration tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tests.support.cluster import ClusterAccess, wait_for

IMAGE = "registry.invalid/app:1"  # never pulled: kwok fakes the containers


def deployment(
    name: str,
    replicas: int = 1,
    *,
    annotations: dict[str, str] | None = None,
    node_selector: dict[str, str] | None = None,
    image: str = IMAGE,
    progress_deadline: int | None = None,
) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels, "annotations": annotations or {}},
            "spec": {
                "containers": [{"name": "app", "image": image}],
                "nodeSelector": node_selector or {},
            },
        },
    }
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


UNSCHEDULABLE = {"deploybell.test/no-such-node": "true"}
"""A nodeSelector no node matches: pods stay Pending, so a run stays in flight."""


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
    }


def deployjob(name: str, manifests: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "DeployJob",
        "metadata": {"name": name},
        "spec": {"manifests": manifests, **spec},
    }


def notifying(
    types: Iterable[str], name: str, manifests: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    """A DeployJob whose start and outcome go to the Notification named after each of `types`."""
    every = [{"notify": t} for t in types]
    return deployjob(name, manifests, onStart=every, always=every, **spec)


def subscribed(
    name: str,
    manifests: list[dict[str, Any]],
    notification: str = "deploy-notification",
    **spec: Any,
) -> dict[str, Any]:
    """A DeployJob whose every hook notifies `notification`, as in the Shippable seed."""
    hooks = {
        h: [{"notify": notification}]
        for h in ("onStart", "onSuccess", "onFailure", "onCancel", "always")
    }
    return deployjob(name, manifests, **hooks, **spec)


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    """A Secret with these keys (as stringData)."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}


def webhook_secret(peer: Any, name: str = "webhook-integration") -> dict[str, Any]:
    """The Secret of the test Notifications: the URL of a local webhook receiver."""
    return secret(name, {"url": peer.url})


def webhook_events(peer: Any, namespace: str, job: str) -> list[dict[str, Any]]:
    """CloudEvents a webhook peer received about one DeployJob, oldest first."""
    return [
        r.json
        for r in peer.received
        if isinstance(r.json, dict) and r.json.get("subject") == f"{namespace}/{job}"
    ]


def notification(name: str = "deploy-notification", type_: str = "webhook") -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_}
    if type_ == "webhook":
        spec["secretRef"] = {"name": "webhook-integration"}
    else:
        spec["recipients"] = ["deploys@example.test"]
    return {
        "apiVersion": "deploybell.io/v1alpha1",
        "kind": "Notification",
        "metadata": {"name": name},
        "spec": spec,
    }


def typed_notifications(
    keys: Mapping[str, dict[str, str]], extra: Mapping[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """For each type in `keys`, a Secret with those keys and a Notification of that type, both
    named after it (its spec completed by `extra[type]`)."""
    out = []
    for type_, data in keys.items():
        spec = {"type": type_, "secretRef": {"name": type_}, **extra.get(type_, {})}
        notification = {
            "apiVersion": "deploybell.io/v1alpha1",
            "kind": "Notification",
            "metadata": {"name": type_},
            "spec": spec,
        }
        out += [secret(type_, data), notification]
    return out


def get_dj(cluster: ClusterAccess, namespace: str, name: str) -> dict[str, Any] | None:
    return cluster.get("deployjobs.deploybell.io", name, namespace)


def wait_dj(
    cluster: ClusterAccess,
    namespace: str,
    name: str,
    what: str,
    check: Callable[[dict[str, Any]], bool],
    timeout: float = 90,
) -> dict[str, Any]:
    """Wait until the DeployJob's status satisfies `check`; return the whole object."""
    last: dict[str, Any] = {}

    def probe() -> dict[str, Any] | None:
        nonlocal last
        obj = get_dj(cluster, namespace, name)
        last = (obj or {}).get("status") or {}
        return obj if obj and check(last) else None

    try:
        return wait_for(f"DeployJob {name}: {what}", probe, timeout=timeout)  # type: ignore[no-any-return]
    except AssertionError as e:
        raise AssertionError(f"{e}\nlast status: {json.dumps(last, indent=1)[:3000]}") from None


TERMINAL = ("Succeeded", "Failed", "Canceled")


def finished(run: int, phase: str) -> Callable[[dict[str, Any]], bool]:
    """Run `run` is in `phase`; for an outcome, its messages are also settled (none Pending)."""

    def check(status: dict[str, Any]) -> bool:
        if status.get("run") != run or status.get("phase") != phase:
            return False
        entries = [e for e in status.get("notifications") or [] if e.get("run") == run]
        return phase not in TERMINAL or all(e.get("state") != "Pending" for e in entries)

    return check


def ledger(status: dict[str, Any], run: int | None = None) -> list[tuple[int, str, str, str]]:
    """(run, event, notification, state) for each ledger entry, in order."""
    return [
        (e["run"], e["event"], e["notification"], e["state"])
        for e in status.get("notifications") or []
        if run is None or e["run"] == run
    ]


def start_refs(status: dict[str, Any], run: int, notification: str) -> dict[str, str]:
    """The provider references kept for the start message of `run` to the Notification's only
    recipient (what its outcome edits): values in the row's refKeys order, or a whole dict."""
    [row] = [
        e
        for e in status.get("notifications") or []
        if e["run"] == run and e["notification"] == notification and e["event"] == "start"
    ]
    [kept] = list((row.get("refs") or {}).values())
    if isinstance(kept, list):
        return dict(zip(row.get("refKeys") or (), kept, strict=True))
    return dict(kept)


def delivered(status: dict[str, Any], run: int, event: str) -> set[str]:
    """The Notifications whose `event` message of `run` was sent."""
    return {e[2] for e in ledger(status, run) if e[1] == event and e[3] == "Sent"}


def sent_everywhere(types: Iterable[str], run: int, outcome: str) -> Callable[[Any], bool]:
    """A status check: the start and `outcome` of `run` reached every one of `types`."""
    wanted = set(types)
    return lambda s: delivered(s, run, "start") == wanted == delivered(s, run, outcome)


def events(cluster: ClusterAccess, namespace: str, name: str) -> list[tuple[str, str]]:
    """(reason, message) of the Events recorded on a DeployJob, oldest first."""
    out = cluster.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "-o",
        "json",
        "--field-selector",
        f"involvedObject.name={name},involvedObject.kind=DeployJob",
    )
    # Timestamps have one-second resolution; the resourceVersion orders events within a second.
    items = sorted(
        json.loads(out)["items"],
        key=lambda e: (
            e.get("lastTimestamp") or e.get("eventTime") or "",
            int(e["metadata"]["resourceVersion"]),
        ),
    )
    return [(e["reason"], e["message"]) for e in items]
