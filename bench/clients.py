"""Which async Kubernetes client for the operator: the same workload through each candidate.

    .venv/bin/pip install kubernetes_asyncio kr8s lightkube   # the candidates (not dependencies)
    .venv/bin/python -m bench.clients [--rounds 5] [--objects 20]

Each library runs in a fresh process (its import cost and RSS count) against the local cluster:
discovery of a group-version, server-side apply of a mixed manifest set (Deployment, Service,
ConfigMap), GET of each object, a label-selected LIST, a WATCH with bookmarks until it has seen a
change to every ConfigMap, a status merge patch of a custom resource, and GETs impersonating a
ServiceAccount; then the same GETs 50 at once. Per step: wall time per request (p50) and the
process's CPU per request. Every library is driven through its public API; where it has no
helper for a step (bookmarks, impersonation) the step goes through its raw request call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

LIBRARIES = ("kubernetes_asyncio", "kr8s", "lightkube")
GROUP = "clientbench.deploybell.io"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}
SA_USER = "system:serviceaccount:{ns}:reader"


def manifests(namespace: str, count: int, round_: int) -> list[dict[str, Any]]:
    """A mixed set: a third each Deployments, Services and ConfigMaps, labelled."""
    labels = {"clientbench": "yes"}
    out: list[dict[str, Any]] = []
    for i in range(count):
        meta = {"name": f"obj-{i}", "namespace": namespace, "labels": labels}
        if i % 3 == 0:
            out.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": meta,
                    "spec": {
                        "replicas": 0,
                        "selector": {"matchLabels": {"app": f"obj-{i}"}},
                        "template": {
                            "metadata": {"labels": {"app": f"obj-{i}"}},
                            "spec": {"containers": [{"name": "c", "image": f"img:{round_}"}]},
                        },
                    },
                }
            )
        elif i % 3 == 1:
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": meta,
                    "spec": {"selector": {"app": f"obj-{i}"}, "ports": [{"port": 80 + round_}]},
                }
            )
        else:
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": meta,
                    "data": {"r": str(round_)},
                }
            )
    return out


def plural(kind: str) -> str:
    return {"Deployment": "deployments", "Service": "services", "ConfigMap": "configmaps"}[kind]


def path_of(obj: dict[str, Any]) -> str:
    group_version, meta = obj["apiVersion"], obj["metadata"]
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    return f"{base}/namespaces/{meta['namespace']}/{plural(obj['kind'])}/{meta['name']}"


# --- one driver per library: raw = (method, path, query, body, content type, headers) ---------


class Driver:
    """The workload's steps, implemented per library."""

    async def open(self, kubeconfig: str) -> None: ...
    async def close(self) -> None: ...
    async def raw(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]: ...
    def stream(self, path: str, query: dict[str, str]) -> AsyncIterator[dict[str, Any]]: ...

    async def discover(self) -> Any:
        return await self.raw("GET", "/apis/apps/v1")

    async def apply(self, obj: dict[str, Any]) -> Any:
        query = {"fieldManager": "clientbench", "force": "true"}
        return await self.raw("PATCH", path_of(obj), query, obj, "application/apply-patch+yaml")

    async def get(self, obj: dict[str, Any]) -> Any:
        return await self.raw("GET", path_of(obj))

    async def list(self, namespace: str) -> Any:
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        return await self.raw("GET", path, {"labelSelector": "clientbench=yes"})

    async def patch_status(self, namespace: str, name: str, value: int) -> Any:
        path = f"/apis/{GROUP}/v1/namespaces/{namespace}/widgets/{name}/status"
        body = {"status": {"observed": value}}
        return await self.raw("PATCH", path, None, body, "application/merge-patch+json")

    async def get_as(self, user: str, obj: dict[str, Any]) -> Any:
        return await self.raw("GET", path_of(obj), headers={"Impersonate-User": user})


class KubernetesAsyncio(Driver):
    async def open(self, kubeconfig: str) -> None:
        from kubernetes_asyncio import client, config

        self.configuration = client.Configuration()
        await config.load_kube_config(
            config_file=kubeconfig, client_configuration=self.configuration
        )
        self.api = client.ApiClient(self.configuration)

    async def close(self) -> None:
        await self.api.close()

    async def raw(
        self, method, path, query=None, body=None, content_type="application/json", headers=None
    ):  # type: ignore[no-untyped-def]
        response = await self.api.call_api(
            path,
            method,
            query_params=list((query or {}).items()),
            header_params={
                "Content-Type": content_type,
                "Accept": "application/json",
                **(headers or {}),
            },
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
        data = await response.read()
        if response.status >= 300:
            raise RuntimeError(f"{response.status}: {data[:200]!r}")
        return orjson.loads(data)

    async def stream(self, path, query):  # type: ignore[no-untyped-def]
        response = await self.api.call_api(
            path,
            "GET",
            query_params=list({**query, "watch": "true"}.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
        async with response:
            async for line in response.content:
                if line.strip():
                    yield orjson.loads(line)


class Kr8s(Driver):
    async def open(self, kubeconfig: str) -> None:
        import kr8s.asyncio

        self.api = await kr8s.asyncio.api(kubeconfig=kubeconfig)

    async def raw(
        self, method, path, query=None, body=None, content_type="application/json", headers=None
    ):  # type: ignore[no-untyped-def]
        content = orjson.dumps(body) if body is not None else None
        async with self.api.call_api(
            method,
            version="",
            base=path,
            params=query,
            content=content,
            headers={"Content-Type": content_type, **(headers or {})},
        ) as response:
            return orjson.loads(response.content)

    async def stream(self, path, query):  # type: ignore[no-untyped-def]
        async with self.api.call_api(
            "GET", version="", base=path, params={**query, "watch": "true"}, stream=True
        ) as response:
            async for line in response.aiter_lines():
                if line.strip():
                    yield orjson.loads(line)


class Lightkube(Driver):
    """lightkube's typed API for what it has (apply, get, list, status patch); raw for the rest."""

    async def open(self, kubeconfig: str) -> None:
        from lightkube import AsyncClient, KubeConfig

        self.config = KubeConfig.from_file(kubeconfig)
        self.client = AsyncClient(self.config, field_manager="clientbench")
        self.clients: dict[str, Any] = {}

    async def close(self) -> None:
        await self.client.close()
        for c in self.clients.values():
            await c.close()

    def _http(self, client: Any) -> Any:
        return client._client._client  # the httpx2 client: lightkube has no raw-request API

    async def raw(
        self, method, path, query=None, body=None, content_type="application/json", headers=None
    ):  # type: ignore[no-untyped-def]
        content = orjson.dumps(body) if body is not None else None
        response = await self._http(self.client).request(
            method,
            path,
            params=query,
            content=content,
            headers={"Content-Type": content_type, **(headers or {})},
        )
        response.raise_for_status()
        return orjson.loads(response.content)

    async def stream(self, path, query):  # type: ignore[no-untyped-def]
        http = self._http(self.client)
        async with http.stream("GET", path, params={**query, "watch": "true"}) as response:
            async for line in response.aiter_lines():
                if line.strip():
                    yield orjson.loads(line)

    async def apply(self, obj: dict[str, Any]) -> Any:
        from lightkube import codecs

        return await self.client.apply(codecs.from_dict(obj), force=True)

    def _kind(self, obj: dict[str, Any]) -> Any:
        from lightkube.core.resource_registry import resource_registry

        return resource_registry.load(obj["apiVersion"], obj["kind"])

    async def get(self, obj: dict[str, Any]) -> Any:
        meta = obj["metadata"]
        found = await self.client.get(self._kind(obj), meta["name"], namespace=meta["namespace"])
        return found.to_dict()

    async def list(self, namespace: str) -> Any:
        from lightkube.resources.core_v1 import ConfigMap

        found = self.client.list(ConfigMap, namespace=namespace, labels={"clientbench": "yes"})
        return [cm.to_dict() async for cm in found]

    async def patch_status(self, namespace: str, name: str, value: int) -> Any:
        from lightkube.generic_resource import create_namespaced_resource
        from lightkube.types import PatchType

        widget = create_namespaced_resource(GROUP, "v1", "Widget", "widgets")
        found = await self.client.patch(
            widget.Status,
            name,
            {"status": {"observed": value}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
        return found.to_dict()

    async def get_as(self, user: str, obj: dict[str, Any]) -> Any:
        # lightkube cannot impersonate: one client per identity, its config's user replaced.
        from lightkube import AsyncClient

        if user not in self.clients:
            single = self.config.get()
            headers = {"Impersonate-User": user}

            class Impersonating(AsyncClient):  # type: ignore[misc]
                pass

            client = Impersonating(single)
            client._client._client.headers.update(headers)
            self.clients[user] = client
        meta = obj["metadata"]
        found = await self.clients[user].get(
            self._kind(obj), meta["name"], namespace=meta["namespace"]
        )
        return found.to_dict()


DRIVERS: dict[str, Callable[[], Driver]] = {
    "kubernetes_asyncio": KubernetesAsyncio,
    "kr8s": Kr8s,
    "lightkube": Lightkube,
}


# --- the workload ------------------------------------------------------------------------------


class Steps:
    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, float] = {}

    async def time(self, name: str, call: Callable[[], Awaitable[Any]]) -> Any:
        cpu, began = time.process_time(), time.perf_counter()
        out = await call()
        self.wall.setdefault(name, []).append(time.perf_counter() - began)
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "requests": len(walls),
                "p50_ms": round(statistics.median(walls) * 1000, 2),
                "cpu_ms_per_request": round(self.cpu[name] / len(walls) * 1000, 3),
            }
            for name, walls in self.wall.items()
        }


async def watch_changes(driver: Driver, namespace: str, expected: int) -> tuple[int, int]:
    """Events (and bookmarks) seen on a label-selected ConfigMap watch until `expected` changes."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    listed = await driver.raw("GET", path, {"labelSelector": "clientbench=yes"})
    version = (listed.get("metadata") or {}).get("resourceVersion", "")
    query = {
        "labelSelector": "clientbench=yes",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "30",
        "resourceVersion": version,
    }
    changes = bookmarks = 0
    async for event in driver.stream(path, query):
        if event.get("type") == "BOOKMARK":
            bookmarks += 1
        else:
            changes += 1
        if changes >= expected:
            break
    return changes, bookmarks


async def workload(library: str, kubeconfig: str, namespace: str, rounds: int, count: int) -> dict:
    import_began = time.perf_counter()
    driver = DRIVERS[library]()
    await driver.open(kubeconfig)
    setup_seconds = time.perf_counter() - import_began
    steps = Steps()
    user = SA_USER.format(ns=namespace)
    watched = 0
    try:
        for round_ in range(rounds):
            objects = manifests(namespace, count, round_)
            configmaps = sum(o["kind"] == "ConfigMap" for o in objects)
            await steps.time("discovery", driver.discover)
            watch = asyncio.create_task(watch_changes(driver, namespace, configmaps))
            await asyncio.sleep(0.2)  # the watch is open before the changes
            for obj in objects:
                await steps.time("apply", lambda o=obj: driver.apply(o))
            if round_ > 0:  # the first round creates: the watch's list already had nothing
                changes, _ = await asyncio.wait_for(watch, 30)
                watched += changes
            else:
                watch.cancel()
            for obj in objects:
                await steps.time("get", lambda o=obj: driver.get(o))
            await steps.time("list", lambda: driver.list(namespace))
            for i in range(count):
                await steps.time(
                    "status patch",
                    lambda i=i, r=round_: driver.patch_status(
                        namespace, f"w-{i % 5}", r * count + i
                    ),
                )
            for obj in objects:
                await steps.time("get impersonated", lambda o=obj: driver.get_as(user, o))
            burst = [driver.get(o) for o in objects for _ in range(50 // count + 1)][:50]
            cpu, began = time.process_time(), time.perf_counter()
            await asyncio.gather(*burst)
            steps.wall.setdefault("50 concurrent GETs", []).append(time.perf_counter() - began)
            steps.cpu["50 concurrent GETs"] = steps.cpu.get("50 concurrent GETs", 0.0) + (
                time.process_time() - cpu
            )
    finally:
        await driver.close()
    total_cpu = time.process_time()
    return {
        "library": library,
        "version": _version(library),
        "setup_seconds": round(setup_seconds, 3),
        "steps": steps.summary(),
        "watch_changes_seen": watched,
        "cpu_seconds_total": round(total_cpu, 2),
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "modules_loaded": len(sys.modules),
    }


def _version(library: str) -> str:
    from importlib.metadata import version

    return version(library.replace("_", "-"))


# --- the parent: set up, one child per library, a table ---------------------------------------


def kubectl(bins: Path, kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        [str(bins / "kubectl"), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def set_up(bins: Path, kubeconfig: Path, namespace: str) -> None:
    kubectl(bins, kubeconfig, "apply", "-f", "-", stdin=json.dumps(CRD))
    kubectl(bins, kubeconfig, "wait", "--for=condition=Established", f"crd/widgets.{GROUP}")
    kubectl(bins, kubeconfig, "create", "namespace", namespace)
    reader = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
        *[
            {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": f"w-{i}"}}
            for i in range(5)
        ],
    ]
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": reader})
    kubectl(bins, kubeconfig, "apply", "-n", namespace, "-f", "-", stdin=body)


def table(results: list[dict[str, Any]]) -> str:
    steps = list(results[0]["steps"]) if results else []
    head = (
        "| step (p50 ms / CPU ms per request) | "
        + " | ".join(f"{r['library']} {r['version']}" for r in results)
        + " |"
    )
    lines = [head, "|---" * (len(results) + 1) + "|"]
    for step in steps:
        cells = [
            f"{r['steps'][step]['p50_ms']} / {r['steps'][step]['cpu_ms_per_request']}"
            for r in results
        ]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    for label, key in (
        ("CPU total (s)", "cpu_seconds_total"),
        ("max RSS (MiB)", "max_rss_mib"),
        ("modules loaded", "modules_loaded"),
        ("watch changes seen", "watch_changes_seen"),
    ):
        lines.append(f"| {label} | " + " | ".join(str(r[key]) for r in results) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clients", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--objects", type=int, default=21)
    parser.add_argument("--library", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.library:  # the child
        result = asyncio.run(
            workload(args.library, args.kubeconfig, args.namespace, args.rounds, args.objects)
        )
        print(json.dumps(result))
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack" / "cluster"))
    import localcluster

    cluster = localcluster.up()
    bins = localcluster.bin_dir()
    results = []
    for library in LIBRARIES:
        namespace = f"clientbench-{library.replace('_', '-')}-{os.getpid()}"
        set_up(bins, cluster.kubeconfig, namespace)
        try:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.clients",
                    "--library",
                    library,
                    "--kubeconfig",
                    str(cluster.kubeconfig),
                    "--namespace",
                    namespace,
                    "--rounds",
                    str(args.rounds),
                    "--objects",
                    str(args.objects),
                ],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if out.returncode != 0:
                print(f"{library} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
                continue
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        finally:
            kubectl(bins, cluster.kubeconfig, "delete", "namespace", namespace, "--wait=false")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
