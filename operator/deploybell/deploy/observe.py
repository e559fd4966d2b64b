"""What a run's objects look like now: watched kinds from the watch cache, others by a read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploybell.api.kinds import WATCHED_KINDS
from deploybell.clients.errors import ApiError
from deploybell.deploy import report
from deploybell.deploy.apply import service_account_user
from deploybell.deploy.health import (
    Health,
    PodProblem,
    Status,
    pod_is_ready,
    pod_problems,
    pod_restart_total,
)
from deploybell.deploy.manifests import ObjectRef
from deploybell.deploy.ports import ClusterAPI, WatchCache
from deploybell.notify.model import WarningEvent

# Kinds watched (label-selected) while a run is in flight in their namespace: read from memory.
WATCHED = frozenset((kind.api_version, kind.kind) for kind in WATCHED_KINDS)
_META_KEYS = (
    "name",
    "namespace",
    "uid",
    "generation",
    "resourceVersion",
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
REVISION = "deployment.kubernetes.io/revision"
DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


@dataclass
class Observation:
    objects: dict[ObjectRef, dict[str, Any] | None] = field(default_factory=dict)
    pod_problems: dict[str, PodProblem] = field(default_factory=dict)
    """problem key (pod/container/reason) → the problem, for pods of the newest revision."""
    restarts: int = 0
    all_pods_ready: bool = True
    needs_polling: bool = False
    """Some objects are not watched and not yet ready: look again on a timer."""


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


def namespaces_of(refs: Sequence[ObjectRef]) -> set[str]:
    """Where the watched kinds among a run's objects (and their pods) live."""
    return {
        ref.namespace for ref in refs if ref.namespace and (ref.api_version, ref.kind) in WATCHED
    }


def key_of(obj: Mapping[str, Any]) -> ObjectRef:
    meta = obj.get("metadata") or {}
    return ObjectRef(
        str(obj.get("apiVersion")),
        str(obj.get("kind")),
        meta.get("namespace"),
        str(meta.get("name")),
    )


def current_pods(cached: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Pods of the newest revision of their controller; old pods may fail while being replaced."""
    by_key = {key_of(o): o for o in cached}
    pods = [o for o in cached if o.get("kind") == "Pod"]
    return [
        p for p in pods if _is_current(p, by_key) and not p["metadata"].get("deletionTimestamp")
    ]


def _owner(obj: Mapping[str, Any], kind: str) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return str(ref.get("name"))
    return None


def _is_current(pod: Mapping[str, Any], by_key: Mapping[ObjectRef, Mapping[str, Any]]) -> bool:
    meta = pod["metadata"]
    ns = meta.get("namespace")
    labels = meta.get("labels") or {}
    if rs_name := _owner(pod, "ReplicaSet"):
        rs = by_key.get(ObjectRef("apps/v1", "ReplicaSet", ns, rs_name))
        deploy_name = _owner(rs, "Deployment") if rs else None
        deploy = by_key.get(ObjectRef("apps/v1", "Deployment", ns, deploy_name or ""))
        if rs is None or deploy is None:
            return True
        rev = (rs["metadata"].get("annotations") or {}).get(REVISION)
        return rev == (deploy["metadata"].get("annotations") or {}).get(REVISION)
    if sts_name := _owner(pod, "StatefulSet"):
        sts = by_key.get(ObjectRef("apps/v1", "StatefulSet", ns, sts_name))
        update = ((sts or {}).get("status") or {}).get("updateRevision")
        return not update or labels.get("controller-revision-hash") == update
    if ds_name := _owner(pod, "DaemonSet"):
        ds = by_key.get(ObjectRef("apps/v1", "DaemonSet", ns, ds_name))
        # Pods carry the template generation, which only moves when spec.template changes.
        annotations = ((ds or {}).get("metadata") or {}).get("annotations") or {}
        generation = annotations.get(DS_TEMPLATE_GENERATION)
        return not generation or labels.get("pod-template-generation") == generation
    return True


def summarize_pods(pods: Iterable[Mapping[str, Any]], observation: Observation) -> None:
    for pod in pods:
        observation.restarts += pod_restart_total(pod)
        phase = (pod.get("status") or {}).get("phase")
        if phase not in ("Succeeded", "Failed") and not pod_is_ready(pod):
            observation.all_pods_ready = False
        for problem in pod_problems(pod):
            key = f"{problem.pod}/{problem.container}/{problem.reason}"
            observation.pod_problems[key] = problem


class Observer:
    """Reads the state of a run's objects."""

    def __init__(
        self, cluster: ClusterAPI, cache: WatchCache, default_service_account: str | None = None
    ) -> None:
        self.cluster = cluster
        self.cache = cache
        self.default_sa = default_service_account
        self.following: set[str] = set()

    async def follow(self, refs: Sequence[ObjectRef]) -> None:
        """Watch the namespaces of these objects (for as long as the run needs them)."""
        wanted = namespaces_of(refs)
        await self.cache.acquire(wanted - self.following)
        await self.cache.release(self.following - wanted)
        self.following = wanted

    async def unfollow(self) -> None:
        """The run ended: its namespaces may stop being watched."""
        following, self.following = self.following, set()
        await self.cache.release(following)

    async def observe(
        self, job_namespace: str, job: str, refs: Sequence[ObjectRef], service_account: str | None
    ) -> Observation:
        problem = self.cache.problem(self.following)
        # The watches are failing, so their objects may be stale: an outage is waited out (the
        # caller retries), and a target cluster's refusal fails the run. The operator's own
        # cluster refusing a watch (RBAC) leaves the objects unseen until maxWaitSeconds.
        if problem is not None and (problem.transient or problem.cluster):
            raise problem
        cached = list(self.cache.objects(job_namespace, job))
        by_key = {key_of(o): dict(o) for o in cached}
        observation = Observation()
        sa = service_account or self.default_sa
        reader = self.cluster.impersonating(service_account_user(job_namespace, sa))
        for ref in refs:
            if (ref.api_version, ref.kind) in WATCHED:
                observation.objects[ref] = by_key.get(ref)
                continue
            try:
                observation.objects[ref] = await reader.get(
                    ref.api_version, ref.kind, ref.namespace, ref.name
                )
            except ApiError as e:
                if e.transient:
                    raise
                observation.objects[ref] = None
            observation.needs_polling = True
        summarize_pods(current_pods(cached), observation)
        return observation

    async def diagnose(
        self,
        namespace: str,
        refs: Sequence[ObjectRef],
        healths: Sequence[Health],
        stuck: Sequence[PodProblem],
        observation: Observation,
    ) -> dict[str, Any]:
        """status.diagnosis: the failing pods and the latest Warning Events of failing objects."""
        failing = {
            ref.name for ref, h in zip(refs, healths, strict=True) if h.status != Status.CURRENT
        }
        problems = list(stuck) or list(observation.pod_problems.values())
        failing |= {p.pod for p in problems}
        return report.diagnosis(problems, await self.warnings(namespace, failing))

    async def warnings(self, namespace: str, names: set[str], limit: int = 5) -> list[WarningEvent]:
        """The latest Warning Events about the named objects (and their pods) in a namespace."""
        try:
            items = await self.cluster.list("v1", "Event", namespace, "type=Warning")
        except ApiError:
            return []  # a diagnosis without events is still a diagnosis
        relevant = [e for e in items if _about(e, names)]
        relevant.sort(
            key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "", reverse=True
        )
        return [
            WarningEvent(
                f"{e['involvedObject'].get('kind')} {e['involvedObject'].get('name')}",
                str(e.get("reason") or ""),
                str(e.get("message") or "")[:300],
                int(e.get("count") or 1),
            )
            for e in relevant[:limit]
        ]


def _about(event: Mapping[str, Any], names: set[str]) -> bool:
    """About one of the failing objects or their pods; never deploybell's own run Events."""
    involved = event.get("involvedObject") or {}
    if involved.get("kind") == "DeployJob":
        return False
    name = str(involved.get("name") or "")
    return name in names or any(name.startswith(f"{n}-") for n in names)
