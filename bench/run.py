"""One bench run: set up, measure the five figures side by side, clean up."""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from tests.support.deploybell import notification, webhook_secret

from bench import audit, flux, footprint, latency, report, scale
from bench import restart as restarts
from bench.audit import AuditLog
from bench.cluster import (
    BARE_USER,
    GROUP_VERSION,
    OPERATOR_USER,
    Api,
    ClusterInfo,
    foreign_operators,
    identity_kubeconfig,
    install_crds,
    local_cluster,
    server_of,
)
from bench.lab import Config, Lab, delete_jobs, wait_until
from bench.operators import bare, deploybell
from bench.profile import Profile
from bench.profile import summarize as summarize_profile
from bench.sink import TimedWebhookPeer
from bench.watch import DeploymentWatch


def run(config: Config, cluster: ClusterInfo | None = None) -> dict[str, Any]:
    """Measure everything; the results as JSON-ready data (partial, with `error`, on failure)."""
    began = time.monotonic()
    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    results: dict[str, Any] = {
        "run_id": run_id,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "config": {k: str(v) for k, v in vars(config).items()},
        "latency": {},
        "footprint": {},
        "warnings": [],
    }
    try:
        cluster = cluster or local_cluster()
        install_crds(cluster)
        with lab_for(config, cluster, run_id) as lab:
            results["warnings"] = lab.warnings
            measure(lab, results)
    except Exception as e:  # reported with whatever was measured before it
        traceback.print_exc()
        results["error"] = f"{type(e).__name__}: {e}"
    finally:
        results["wall_seconds"] = round(time.monotonic() - began, 1)
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        results["targets"] = report.targets(results)
    return results


@contextlib.contextmanager
def lab_for(config: Config, cluster: ClusterInfo, run_id: str) -> Iterator[Lab]:
    """Namespaces, the webhook receiver, both operators and the watch; all gone afterwards."""
    sizes = sorted(config.sizes)
    namespaces = [f"bench-{run_id}-big"] + ([f"bench-{run_id}-small"] if sizes[:-1] else [])
    api = Api(cluster.kubeconfig)
    log_dir = config.out_dir / f"logs-{run_id}"
    with ExitStack() as stack:
        sink = stack.enter_context(TimedWebhookPeer())
        lab = Lab(
            config=config,
            cluster=cluster,
            api=api,
            sink=sink,
            watch=DeploymentWatch(api, namespaces),
            audit=AuditLog(cluster.audit_log) if cluster.audit_log else None,
            operator=deploybell(
                identity_kubeconfig(cluster, OPERATOR_USER),
                namespaces,
                log_dir / "deploybell.log",
                config.operator_threads,
                config.trace_memory,
            ),
            bare=bare(identity_kubeconfig(cluster, BARE_USER), namespaces, log_dir / "bare.log"),
            run_id=run_id,
            log_dir=log_dir,
        )
        stack.callback(clean_up, lab, namespaces)
        lab.say(f"namespaces {', '.join(namespaces)}; logs in {log_dir}")
        create_namespaces(api, namespaces, sink)
        start_operators(lab)
        lab.watch.start()
        warn_of_other_operators(lab)
        yield lab


def create_namespaces(api: Api, namespaces: list[str], sink: TimedWebhookPeer) -> None:
    """Each with the webhook Secret and the Notification `deploy-notification` of every job."""
    for namespace in namespaces:
        api.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        secret = webhook_secret(sink)
        api.request("POST", f"/api/v1/namespaces/{namespace}/secrets", secret)
        path = f"/apis/{GROUP_VERSION}/namespaces/{namespace}/notifications"
        api.request("POST", path, notification())


def start_operators(lab: Lab) -> None:
    """Both at once; ready when deploybell has indexed every namespace's Notification."""
    lab.operator.start(wait=False)
    lab.bare.start(wait=False)
    lab.operator.wait_healthy()
    lab.bare.wait_healthy()
    for namespace in lab.watch.namespaces:
        what = f"Notification ready in {namespace}"
        wait_until(what, lambda ns=namespace: ready(lab.api, ns), 60)


def warn_of_other_operators(lab: Lab) -> None:
    ours = {lab.operator.pid, lab.bare.pid}
    foreign = foreign_operators(ours, server_of(lab.cluster.kubeconfig))
    if foreign:
        lab.warnings.append(
            f"other deploybell operators run on this cluster (pids {foreign}): if they watch "
            "all namespaces they act on the bench's DeployJobs too"
        )
        lab.say(f"WARNING: {lab.warnings[-1]}")


def ready(api: Api, namespace: str) -> bool:
    path = f"/apis/{GROUP_VERSION}/namespaces/{namespace}/notifications/deploy-notification"
    conditions = (api.request("GET", path).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def measure(lab: Lab, results: dict[str, Any]) -> None:
    config = lab.config
    largest, big = max(config.sizes), lab.watch.namespaces[0]
    whole_run = lab.audit.mark() if lab.audit else None
    results["footprint"]["start"] = footprint.snapshot(lab)
    measure_latency(lab, results)
    names = [f"n{largest}-r1-{i:04d}" for i in range(largest)]
    active = [key[1] for key in latency.sample_of([(big, n) for n in names], config.active)]
    results["footprint"]["idle"] = footprint.idle(lab, largest)
    results["footprint"]["active"] = footprint.active(lab, big, active, largest)
    profile = Profile(0, lab.log_dir / "profile-restart.txt") if config.profile else None
    reps = [
        restarts.restart(lab, big, largest + rep - 1, rep, profile if rep == 1 else None)
        for rep in range(1, config.restart_reps + 1)
    ]
    if reps:
        results["restart"] = {"reps": reps, "summary": restarts.summarize(reps)}
        results["restart"]["profile"] = profile_summary(profile)
    if whole_run is not None:
        results["foreign_requests"] = foreign_requests(lab, whole_run)
    if config.scale_jobs:
        try:
            results["scale"] = scale.measure(lab, big, config.scale_jobs)
        finally:
            scale.remove(lab, big)
    if config.flux_sizes:
        try:
            results["flux"] = flux.measure(lab, sorted(config.flux_sizes))
        except Exception as e:  # the peer failing leaves deploybell's figures standing
            traceback.print_exc()
            results["flux"] = {"error": f"{type(e).__name__}: {e}"}


def measure_latency(lab: Lab, results: dict[str, Any]) -> None:
    """The smaller sizes in their own namespace, removed before the largest size runs, so that
    the footprint and restart figures see exactly the largest size's DeployJobs."""
    sizes = sorted(lab.config.sizes)
    big, small = lab.watch.namespaces[0], lab.watch.namespaces[1:]
    for size in sizes[:-1]:
        results["latency"][str(size)] = latency.measure_size(lab, small[0], size)
    if small:
        lab.say(f"removing {small[0]} before N={sizes[-1]} (the operator releases its DeployJobs)")
        seconds = delete_jobs(lab, small[0])
        lab.cluster.kubectl("delete", "namespace", small[0], "--timeout=300s")
        results["cleanup_small_seconds"] = round(seconds, 1)
    largest = sizes[-1]
    profile = Profile(lab.operator.pid, lab.log_dir / f"profile-n{largest}.txt")
    with profile if lab.config.profile else contextlib.nullcontext():
        results["latency"][str(largest)] = latency.measure_size(lab, big, largest)
    results["profile"] = profile_summary(profile)


def profile_summary(profile: Profile | None) -> dict[str, Any] | None:
    if profile is None or not (profile.proc or profile.error):
        return None  # not asked for
    return summarize_profile(profile.out) if profile.out.exists() else {"error": profile.error}


def foreign_requests(lab: Lab, since: audit.Mark) -> int:
    """Requests by other operators (deploybell or kopf user agents) in the bench's namespaces."""
    assert lab.audit is not None
    ours = {OPERATOR_USER, BARE_USER}
    count = 0
    needles = [f'"namespace":"{ns}"' for ns in lab.watch.namespaces]
    for entry in lab.audit.requests(since, contains=needles):
        agent = str(entry.get("userAgent", ""))
        namespace = (entry.get("objectRef") or {}).get("namespace")
        if (
            namespace not in lab.watch.namespaces
            or (entry.get("user") or {}).get("username") in ours
        ):
            continue
        count += agent.startswith(("deploybell/", "kopf/"))
    if count:
        lab.warnings.append(f"{count} requests by another operator in the bench's namespaces")
    return count


def clean_up(lab: Lab, namespaces: list[str]) -> None:
    """DeployJobs first, while the operator runs (their finalizer); then everything else."""
    lab.say("cleaning up: deleting the DeployJobs (the operator releases them), then namespaces")
    try:
        for namespace in namespaces:
            delete_jobs(lab, namespace)
    finally:
        lab.watch.stop()
        for proc in (lab.operator, lab.bare):
            with contextlib.suppress(RuntimeError):
                proc.stop()
        for namespace in namespaces:
            lab.cluster.kubectl(
                "delete", "namespace", namespace, "--ignore-not-found", "--wait=false"
            )
