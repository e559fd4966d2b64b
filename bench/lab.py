"""What every phase of the bench shares: settings, cluster, operators, receiver and watch."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support.deploybell import deployment, subscribed

from bench.audit import AuditLog
from bench.cluster import Api, ApiError, ClusterInfo, deployjobs_path
from bench.operators import Supervised
from bench.sink import TimedWebhookPeer
from bench.watch import DeploymentWatch

ROOT = Path(__file__).resolve().parents[1]
REP_LABEL = "bench.deploybell.io/rep"
T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    """How much to measure; the defaults are `make bench`'s."""

    sizes: tuple[int, ...] = (10, 100, 1000)
    """DeployJobs created at once, one latency measurement per size (the largest one last)."""

    reps: int = 3
    """Repetitions of each size up to `max_repeated_size`; larger sizes run once."""

    max_repeated_size: int = 100

    kubectl_sample: int = 100
    """At most this many Deployments of each repetition also get a `kubectl rollout status`."""

    idle_seconds: float = 60.0
    """How long the operators are watched doing nothing, with the largest size's DeployJobs."""

    active: int = 100
    """DeployJobs given a new run while RSS and CPU are sampled."""

    restart_reps: int = 3
    """Restarts of the operator with the largest size's DeployJobs in place."""

    quiet_seconds: float = 5.0
    """After a restart, how long to keep listening for re-sent notifications."""

    operator_threads: int = 0
    """A what-if: the operator with this many threads for its API calls (0: as it is)."""

    out_dir: Path = ROOT / "bench" / "results"

    trace_memory: bool = False
    """A what-if: the operator with tracemalloc, reporting what holds its memory (bench.memory)."""

    scale_jobs: int = 10_000
    """DeployJobs in place for the last restart and idle figures (0: skip); those beyond the
    ones that ran get a copy of a finished run's status (bench/scale.py)."""

    flux_sizes: tuple[int, ...] = (10, 100, 1000)
    """Deployments in one Flux Kustomization, once each, after everything else (empty: no Flux)."""

    profile: bool = True
    """Record the operator with py-spy during the largest size's run (skipped, with a note,
    when py-spy is missing or may not attach)."""

    def reps_for(self, size: int) -> int:
        return self.reps if size <= self.max_repeated_size else 1


@dataclass
class Lab:
    config: Config
    cluster: ClusterInfo
    api: Api
    sink: TimedWebhookPeer
    watch: DeploymentWatch
    audit: AuditLog | None
    operator: Supervised
    bare: Supervised
    run_id: str
    log_dir: Path
    began: float = field(default_factory=time.monotonic)
    warnings: list[str] = field(default_factory=list)

    def say(self, message: str) -> None:
        took = time.monotonic() - self.began
        print(f"==> [{time.strftime('%H:%M:%S')} +{took:5.0f}s] {message}", flush=True)


def wait_until(what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll probe() until it returns something truthy; on timeout, fail with its last answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


def parallel(fn: Callable[[str], T], items: Iterable[str], workers: int = 16) -> list[T]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def bench_job(name: str, label: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A DeployJob of one 1-replica Deployment, every hook notifying the webhook Notification."""
    job = subscribed(name, [deployment(name, annotations=annotations)])
    job["metadata"]["labels"] = {REP_LABEL: label}
    return job


def create_jobs(api: Api, namespace: str, names: list[str], label: str) -> dict[str, float]:
    """Create the DeployJobs at once (16 at a time); name → when its create request was sent."""

    def create(name: str) -> tuple[str, float]:
        sent = time.monotonic()
        api.request("POST", deployjobs_path(namespace), bench_job(name, label))
        return name, sent

    return dict(parallel(create, names))


def list_jobs(api: Api, namespace: str, label: str = "") -> list[dict[str, Any]]:
    query = {"labelSelector": f"{REP_LABEL}={label}"} if label else {}
    return list(api.request("GET", deployjobs_path(namespace), query=query).get("items") or [])


def settled(job: dict[str, Any], run: int) -> bool:
    """Run `run` succeeded and every message of it is recorded as Sent."""
    status = job.get("status") or {}
    if status.get("run") != run or status.get("phase") != "Succeeded":
        return False
    entries = [e for e in status.get("notifications") or [] if e.get("run") == run]
    return bool(entries) and all(e.get("state") == "Sent" for e in entries)


def wait_settled(api: Api, namespace: str, label: str, run: int, names: Collection[str]) -> None:
    """Until the named DeployJobs (labelled `label`) have settled run `run`."""
    wanted, count = set(names), len(set(names))
    timeout = 60 + 0.3 * count
    deadline = time.monotonic() + timeout
    while True:
        jobs = [j for j in list_jobs(api, namespace, label) if j["metadata"]["name"] in wanted]
        left = [j for j in jobs if not settled(j, run)]
        if len(jobs) >= count and not left:
            return
        if time.monotonic() > deadline:
            seen = [(j["metadata"]["name"], (j.get("status") or {}).get("phase")) for j in left[:5]]
            raise TimeoutError(
                f"{label}: {len(jobs)} of {count} DeployJobs exist, {len(left)} not settled "
                f"after {timeout:.0f}s, e.g. {seen}"
            )
        time.sleep(0.5)


def delete_jobs(lab: Lab, namespace: str, timeout: float = 300) -> float:
    """Delete every DeployJob in the namespace and wait until the operator has let them go."""
    began = time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = list_jobs(lab.api, namespace)
        if not left:
            return time.monotonic() - began
        if any(not job["metadata"].get("deletionTimestamp") for job in left):
            delete_collection(lab.api, namespace)
        if not lab.operator.alive():
            strip_finalizers(lab.api, namespace, left)
        time.sleep(0.5)
    raise TimeoutError(f"DeployJobs in {namespace} still there after {timeout:.0f}s")


def delete_collection(api: Api, namespace: str) -> None:
    """One DELETE of the collection. The API server deletes its items within the request: when
    the request times out (a thousand DeployJobs with finalizers take longer than one request
    may), the rest stay, and the caller asks again for those."""
    try:
        api.request("DELETE", deployjobs_path(namespace))
    except ApiError as e:
        if e.status not in (0, 404, 504):
            raise


def strip_finalizers(api: Api, namespace: str, jobs: list[dict[str, Any]]) -> None:
    """Without a running operator nobody releases the DeployJobs: let them go unhandled."""
    patch = {"metadata": {"finalizers": None}}
    for job in jobs:
        path = deployjobs_path(namespace, job["metadata"]["name"])
        try:
            api.request("PATCH", path, patch, content_type="application/merge-patch+json")
        except ApiError as e:
            if e.status != 404:
                raise
