"""Is an object rolled out? kstatus rules over the object's last observed state (pure).

Generic rules (deletion, observedGeneration, Reconciling/Stalled conditions) apply to every
object first; then a per-kind rule decides, and unknown kinds fall back to their Ready condition.
"""

from collections.abc import Callable, Mapping
from typing import Any

from deploybell.deploy.health_model import ApiObject, Health, Status, field_at
from deploybell.deploy.health_pods import (
    FAILING_WAITING_REASONS,
    PodProblem,
    pod_health,
    pod_is_ready,
    pod_problems,
    pod_restart_total,
)
from deploybell.deploy.health_workloads import (
    daemonset_health,
    deployment_health,
    job_health,
    replicaset_health,
    statefulset_health,
)

__all__ = [
    "FAILING_WAITING_REASONS",
    "Health",
    "PodProblem",
    "Status",
    "evaluate",
    "pod_is_ready",
    "pod_problems",
    "pod_restart_total",
]


def evaluate(obj: Mapping[str, Any] | None) -> Health:
    """The health of an object as last read from the API server; None means it does not exist."""
    if obj is None:
        return Health(Status.NOT_FOUND, "The object does not exist")
    view = ApiObject(obj)
    generic = _generic_health(view)
    if generic is not None:
        return generic
    rule = _RULES_BY_GROUP_KIND.get(view.group_kind, _custom_resource_health)
    return rule(view)


def _generic_health(obj: ApiObject) -> Health | None:
    """The verdict from properties every kind shares, or None when the kind rule must decide."""
    # Truthiness, not str: a client that decodes timestamps hands us a datetime here.
    if field_at(obj.raw, "metadata.deletionTimestamp"):
        return Health(Status.TERMINATING, f"{obj.title} is being deleted")
    generation = obj.number("metadata.generation", -1)
    observed = obj.number("status.observedGeneration", -1)
    # Kinds without observedGeneration cannot tell us; for the rest, a stale status describes
    # the previous spec and says nothing about this rollout.
    if generation != -1 and observed != -1 and observed != generation:
        return obj.in_progress(f"generation {generation} not yet observed (status is {observed})")
    reconciling = obj.condition("Reconciling")
    if reconciling is not None and reconciling.is_true:
        return obj.in_progress(f"reconciling: {reconciling.explain()}")
    stalled = obj.condition("Stalled")
    if stalled is not None and stalled.is_true:
        return obj.failed("Stalled", f"stalled: {stalled.explain()}")
    return None


def _custom_resource_health(obj: ApiObject) -> Health:
    """Kinds without a rule of their own: Ready decides when present, else there is no wait."""
    ready = obj.condition("Ready")
    # kstatus ignores Ready; controllers commonly hold it False while they work, so it is the
    # best signal a custom resource gives that it is not done yet.
    if ready is not None and not ready.is_true:
        return obj.in_progress(f"not ready: {ready.explain()}")
    if ready is not None:
        return obj.current("ready")
    if not obj.raw.get("status"):
        return obj.current("has no status to wait for")
    return obj.current("reports no condition to wait for")


def _service_health(service: ApiObject) -> Health:
    """A LoadBalancer Service waits for an address; other Service types are ready on creation."""
    service_type = service.text("spec.type") or "ClusterIP"
    if service_type != "LoadBalancer":
        return service.current(f"{service_type} service needs no rollout")
    ingress = field_at(service.raw, "status.loadBalancer.ingress")
    if not isinstance(ingress, list) or not ingress:
        return service.in_progress("waiting for the load balancer to get an address")
    first = ingress[0] if isinstance(ingress[0], Mapping) else {}
    address = first.get("ip") or first.get("hostname") or "an address"
    return service.current(f"load balancer ready at {address}")


def _pvc_health(claim: ApiObject) -> Health:
    """A PersistentVolumeClaim is done once Bound."""
    phase = claim.text("status.phase")
    volume = claim.text("spec.volumeName") or "its volume"
    if phase == "Bound":
        return claim.current(f"bound to {volume}")
    if phase == "Lost":
        # kstatus keeps Lost in progress, but the volume is gone and nothing brings it back.
        return claim.failed("ClaimLost", f"lost {volume}")
    return claim.in_progress(f"phase {phase or 'unknown'}, waiting to be bound")


def _crd_health(crd: ApiObject) -> Health:
    """A CustomResourceDefinition is done once Established; rejected names fail it."""
    names = crd.condition("NamesAccepted")
    if names is not None and names.is_false:
        return crd.failed(
            names.reason or "NamesNotAccepted", f"names not accepted: {names.message}"
        )
    established = crd.condition("Established")
    if established is not None and established.is_true:
        return crd.current("established")
    # "Installing" is the normal moment between accepting the names and serving them.
    if established is not None and established.is_false and established.reason != "Installing":
        return crd.failed(established.reason or "NotEstablished", established.explain())
    return crd.in_progress("not established yet")


_RULES_BY_GROUP_KIND: dict[str, Callable[[ApiObject], Health]] = {
    "apps/Deployment": deployment_health,
    "apps/StatefulSet": statefulset_health,
    "apps/DaemonSet": daemonset_health,
    "apps/ReplicaSet": replicaset_health,
    "batch/Job": job_health,
    "Pod": pod_health,
    "PersistentVolumeClaim": _pvc_health,
    "Service": _service_health,
    "apiextensions.k8s.io/CustomResourceDefinition": _crd_health,
}
