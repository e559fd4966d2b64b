"""Pod health and the container problems that explain a failing rollout (pure)."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from deploybell.deploy.health_model import ApiObject, Health, field_at, int_at, plural, str_at

FAILING_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "InvalidImageName",
        "CreateContainerError",
    }
)
"""Waiting reasons that mean a container will not start without a human changing something."""


@dataclass(frozen=True)
class PodProblem:
    """One container that is failing, with the evidence a human needs."""

    pod: str
    container: str
    reason: str
    """The kubelet's reason, e.g. CrashLoopBackOff, ErrImagePull, Error, OOMKilled."""
    message: str
    exit_code: int | None
    """Exit code of the last run, when the container ran at all."""
    restart_count: int

    def sentence(self) -> str:
        """One line for a notification, naming the pod and the container."""
        return f"pod {self.pod} {_container_clause(self)}"


def _container_clause(problem: PodProblem) -> str:
    """The sentence without the pod: what is wrong with which container."""
    evidence = []
    if problem.exit_code is not None:
        evidence.append(f"exit code {problem.exit_code}")
    if problem.restart_count:
        evidence.append(plural(problem.restart_count, "restart"))
    clause = f"container {problem.container} is in {problem.reason}"
    if evidence:
        clause += f" ({', '.join(evidence)})"
    if problem.message:
        clause += f": {problem.message.strip()}"
    return clause


def pod_problems(pod: Mapping[str, Any]) -> list[PodProblem]:
    """Containers of the pod, init containers first, that are failing rather than starting."""
    pod_name = str_at(pod, "metadata.name")
    pod_failed = str_at(pod, "status.phase") == "Failed"
    problems = []
    for container in _container_statuses(pod):
        problem = _container_problem(pod_name, container, pod_failed)
        if problem is not None:
            problems.append(problem)
    return problems


def _container_statuses(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Init container statuses, then app container statuses."""
    for path in ("status.initContainerStatuses", "status.containerStatuses"):
        entries = field_at(pod, path)
        if isinstance(entries, list):
            yield from (entry for entry in entries if isinstance(entry, Mapping))


def _container_problem(
    pod_name: str, container: Mapping[str, Any], pod_failed: bool
) -> PodProblem | None:
    """The problem one container status shows, if any."""
    waiting_reason = str_at(container, "state.waiting.reason")
    if waiting_reason in FAILING_WAITING_REASONS:
        return PodProblem(
            pod=pod_name,
            container=str_at(container, "name"),
            reason=waiting_reason,
            message=str_at(container, "state.waiting.message"),
            # A container waiting to restart keeps its previous exit in lastState.
            exit_code=int_at(container, "lastState.terminated.exitCode"),
            restart_count=int_at(container, "restartCount") or 0,
        )
    exit_code = int_at(container, "state.terminated.exitCode")
    # A nonzero exit only counts once the pod has given up; before that the kubelet may retry.
    if pod_failed and exit_code:
        return PodProblem(
            pod=pod_name,
            container=str_at(container, "name"),
            reason=str_at(container, "state.terminated.reason") or "Error",
            message=str_at(container, "state.terminated.message"),
            exit_code=exit_code,
            restart_count=int_at(container, "restartCount") or 0,
        )
    return None


def pod_restart_total(pod: Mapping[str, Any]) -> int:
    """Restarts summed over all containers, init containers included."""
    return sum(int_at(container, "restartCount") or 0 for container in _container_statuses(pod))


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's Ready condition is True."""
    ready = ApiObject(pod).condition("Ready")
    return ready is not None and ready.is_true


def pod_health(pod: ApiObject) -> Health:
    """Health of a v1 Pod: Succeeded or Running and Ready is Current, failing containers Fail."""
    phase = pod.text("status.phase")
    if phase == "Succeeded":
        return pod.current("completed successfully")
    problems = pod_problems(pod.raw)
    if phase == "Failed":
        return _failed_pod_health(pod, problems)
    if problems:
        return pod.failed(problems[0].reason, _container_clause(problems[0]))
    if phase == "Running" and pod_is_ready(pod.raw):
        return pod.current("running and ready")
    return pod.in_progress(_waiting_detail(pod, phase))


def _failed_pod_health(pod: ApiObject, problems: list[PodProblem]) -> Health:
    """A Failed pod, explained by the pod's own reason (Evicted, ...) or its first bad container."""
    pod_reason = pod.text("status.reason")
    if problems and not pod_reason:
        return pod.failed(problems[0].reason, _container_clause(problems[0]))
    message = pod.text("status.message")
    detail = f"failed with {pod_reason}" if pod_reason else "failed"
    return pod.failed(pod_reason or "PodFailed", f"{detail}: {message}" if message else detail)


def _waiting_detail(pod: ApiObject, phase: str) -> str:
    """Why a pod that is neither done nor failing is not ready yet."""
    scheduled = pod.condition("PodScheduled")
    if scheduled is not None and scheduled.is_false:
        # The scheduler reports Unschedulable while the cluster autoscaler may still add a node,
        # so this stays in progress and the run's deadline decides.
        return f"not scheduled: {scheduled.explain()}"
    if not phase:
        return "not yet picked up by a node"
    ready = pod.condition("Ready")
    if phase == "Running" and ready is not None:
        return f"running but not ready: {ready.explain()}"
    return f"phase {phase}"
