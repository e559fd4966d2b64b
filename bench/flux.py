"""Flux as a peer: the same N Deployments delivered by one Flux Kustomization (from a git
repository on loopback) with a generic-webhook Alert, on the same cluster in the same run.

Flux tells about a Kustomization, not each object: its `Health check passed` event comes once
every object of the Kustomization is ready (kustomize-controller polls them every 5 s). So the
figure per Deployment is that event's arrival minus the moment the bench's watch saw the
Deployment complete, as for deploybell's success message; the last Deployment's gap is Flux's
own detection delay.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support.deploybell import deployment

from bench import stats
from bench.cluster import Api, identity_kubeconfig
from bench.flux_lab import AlertSink, Flux, FluxUnavailable, build, running
from bench.lab import ROOT, Lab, wait_until
from bench.procstats import MIB, UsageWindow, usage
from bench.watch import DeploymentWatch

FLUX_USER = "deploybell-bench-flux"
KUSTOMIZATION = "apps"
HEALTHY = "Health check passed"


def measure(lab: Lab, sizes: list[int]) -> dict[str, Any]:
    """Each size once; {"error": ...} with what refused when Flux cannot be built or run."""
    lab.say("flux: building the controllers (hack/cluster/build.sh flux; cached after the first)")
    try:
        bins = build()
    except FluxUnavailable as e:
        lab.say(f"flux: not measured: {e}")
        return {"error": str(e)}
    kubeconfig = identity_kubeconfig(lab.cluster, FLUX_USER)
    crds = str(bins.parent / "crds")
    lab.cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", crds)
    lab.cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", crds)
    results: dict[str, Any] = {"versions": versions(), "sizes": {}}
    with AlertSink() as sink, running(bins, kubeconfig, lab.log_dir / "flux") as flux:
        results["started"] = rss(flux)
        for size in sizes:
            results["sizes"][str(size)] = one_size(lab, flux, sink, size)
    return results


def versions() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "hack" / "cluster" / "versions.env").read_text().splitlines():
        if line.startswith(("FLUX_", "GITTESTSERVER_")):
            key, _, value = line.partition("=")
            pins[key] = value
    return pins


def rss(flux: Flux) -> dict[str, float]:
    """RSS of each controller now, MiB, and their sum."""
    out = {name: round(usage(pid).rss_bytes / MIB, 1) for name, pid in flux.pids.items()}
    out["total"] = round(sum(out.values()), 1)
    return out


def one_size(lab: Lab, flux: Flux, sink: AlertSink, size: int) -> dict[str, Any]:
    namespace = f"bench-{lab.run_id}-flux-n{size}"
    lab.say(f"flux: {size} Deployments in one Kustomization ({namespace})")
    api = Api(lab.cluster.kubeconfig)  # a watch of its own: closing it leaves the bench's alone
    lab.api.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    names = [f"flux-n{size}-{i:04d}" for i in range(size)]
    url = flux.push(f"bench/n{size}.git", manifests(names))
    apply(lab, namespace, alerting(namespace, sink.url))
    watch = DeploymentWatch(api, [namespace])
    watch.start()
    try:
        began = time.monotonic()
        with UsageWindow(flux.pids) as window:
            apply(lab, namespace, delivery(namespace, url))
            arrived = wait_until(
                f"Flux's '{HEALTHY}' event for {size} Deployments",
                lambda: sink.first("Kustomization", KUSTOMIZATION, HEALTHY, began),
                timeout=180 + size * 0.6,
                interval=0.05,
            )
        ready = [watch.ready_after((namespace, n), began) for n in names]
        seen = [at for at in ready if at is not None]
        idle_rss = rss(flux)
    finally:
        watch.stop()
    result = {
        "size": size,
        "detect_ms": stats.summary_ms([arrived - at for at in seen]),
        "after_last_ready_ms": round((arrived - max(seen)) * 1000) if seen else None,
        "end_to_end_ms": round((arrived - began) * 1000),
        "not_seen_ready": size - len(seen),
        "cpu_seconds": round(sum(u["cpu_seconds"] for u in window.result.values()), 2),
        "per_controller": window.result,
        "rss_mib_after": idle_rss,
    }
    lab.say(
        f"  flux n{size}: event - rolled out p50 {result['detect_ms']['p50']} ms, p99 "
        f"{result['detect_ms']['p99']} ms; after the last {result['after_last_ready_ms']} ms; "
        f"CPU {result['cpu_seconds']} s; RSS {idle_rss['total']} MiB"
    )
    lab.cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    return result


def manifests(names: list[str]) -> dict[str, str]:
    """The same Deployments deploybell's bench deploys: one replica each, one file each."""
    return {f"deploy/{name}.yaml": json.dumps(deployment(name)) + "\n" for name in names}


def alerting(namespace: str, url: str) -> list[dict[str, Any]]:
    provider = {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Provider",
        "metadata": {"name": "webhook", "namespace": namespace},
        "spec": {"type": "generic", "address": url},
    }
    alert = {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Alert",
        "metadata": {"name": "deliveries", "namespace": namespace},
        "spec": {
            "providerRef": {"name": "webhook"},
            "eventSeverity": "info",
            "eventSources": [{"kind": "Kustomization", "name": "*"}],
        },
    }
    return [provider, alert]


def delivery(namespace: str, url: str) -> list[dict[str, Any]]:
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "apps", "namespace": namespace},
        "spec": {"url": url, "ref": {"branch": "main"}, "interval": "10m"},
    }
    kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": KUSTOMIZATION, "namespace": namespace},
        "spec": {
            "sourceRef": {"kind": "GitRepository", "name": "apps"},
            "path": "./deploy",
            "targetNamespace": namespace,
            "prune": True,
            "wait": True,
            "interval": "10m",
            "timeout": "10m",
        },
    }
    return [source, kustomization]


def apply(lab: Lab, namespace: str, objects: list[dict[str, Any]]) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    lab.cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", stdin=body)
