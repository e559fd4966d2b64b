"""Apply a DeployJob's manifests with server-side apply, as the right identity; prune; snapshots."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deploybell.api.constants import GROUP, LABEL_JOB, LABEL_JOB_NAMESPACE
from deploybell.api.deployjob import MAX_MANIFESTS, DeployJobSpec
from deploybell.clients.errors import ApiError, Forbidden, Unauthorized, UnknownKind
from deploybell.deploy.manifests import (
    ManifestError,
    ObjectRef,
    check_object,
    digest,
    parse_documents,
    prepare,
    ref_of,
)
from deploybell.deploy.ports import ClusterAPI
from deploybell.deploy.report import images_of

CRD_WAIT_SECONDS = 60.0


class ApplyFailure(Exception):
    """The run cannot go on: `reason` is CamelCase, `message` one sentence naming the object."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ApplyResult:
    refs: list[ObjectRef]
    revision: str
    images: list[str]
    generations: dict[ObjectRef, int]
    """metadata.generation of each object as applied: an older one in a watch cache is stale."""


@dataclass(frozen=True)
class Snapshot:
    """The manifests of the last successful run, kept for rollbackOnFailure."""

    run: int
    revision: str
    objects: list[dict[str, Any]]


def snapshot_name(job: str) -> str:
    return f"{job}-deploybell-last-good"[:253]


def service_account_user(namespace: str, sa: str | None) -> str | None:
    return f"system:serviceaccount:{namespace}:{sa}" if sa else None


class Applier:
    """Applies for every DeployJob; impersonates the job's ServiceAccount when it has one.

    `cluster` is where the objects go; `sources` (when it is another cluster: spec.cluster) is
    the operator's own, where the DeployJob and its `manifestsFrom` ConfigMaps live.
    """

    def __init__(
        self,
        cluster: ClusterAPI,
        default_service_account: str | None = None,
        sources: ClusterAPI | None = None,
    ) -> None:
        self.cluster = cluster
        self.default_sa = default_service_account
        self.sources = sources or cluster
        self.remote = sources is not None

    def service_account(self, spec: DeployJobSpec | None) -> str | None:
        return (spec.service_account_name if spec else None) or self.default_sa

    def as_job(self, namespace: str, spec: DeployJobSpec | None) -> ClusterAPI:
        return self.cluster.impersonating(
            service_account_user(namespace, self.service_account(spec))
        )

    async def load(self, namespace: str, spec: DeployJobSpec) -> list[dict[str, Any]]:
        """The user's objects: inline manifests, then each ConfigMap source in order."""
        objects: list[dict[str, Any]] = []
        for index, obj in enumerate(spec.manifests):
            check_object(obj, f"spec.manifests[{index}]")
            objects.append(dict(obj))
        for source in spec.manifests_from:
            where = f"ConfigMap {source.name} key {source.key}"
            cm = await self.sources.get("v1", "ConfigMap", namespace, source.name)
            if cm is None:
                raise ApplyFailure(
                    "ConfigMapNotFound",
                    f"ConfigMap {source.name} not found in "
                    f"namespace {namespace} (spec.manifestsFrom)",
                )
            text = (cm.get("data") or {}).get(source.key)
            if text is None:
                keys = ", ".join(sorted(cm.get("data") or {})) or "none"
                raise ApplyFailure("ConfigMapKeyNotFound", f"{where}: no such key (keys: {keys})")
            try:
                docs = parse_documents(text, where)
                for index, obj in enumerate(docs):
                    check_object(obj, f"{where}, object {index + 1}")
            except ManifestError as e:
                raise ApplyFailure("InvalidManifest", str(e)) from None
            objects.extend(docs)
        if len(objects) > MAX_MANIFESTS:
            # One status entry per object: more would outgrow what the API server stores.
            raise ApplyFailure(
                "TooManyObjects",
                f"{len(objects)} objects in spec.manifests and spec.manifestsFrom together; "
                f"a DeployJob applies at most {MAX_MANIFESTS}: split it into several",
            )
        return objects

    async def apply(self, namespace: str, job: str, spec: DeployJobSpec, run: int) -> ApplyResult:
        try:
            objects = await self.load(namespace, spec)
        except ManifestError as e:
            raise ApplyFailure("InvalidManifest", str(e)) from None
        await self.check_service_account(namespace, spec)
        generations = await self.apply_objects(namespace, job, spec, run, objects)
        return ApplyResult(list(generations), digest(objects), images_of(objects), generations)

    async def check_service_account(self, namespace: str, spec: DeployJobSpec) -> None:
        sa = self.service_account(spec)
        if sa and await self.cluster.get("v1", "ServiceAccount", namespace, sa) is None:
            raise ApplyFailure(
                "ServiceAccountNotFound",
                f"ServiceAccount {sa} not found in namespace {namespace}; "
                "the DeployJob applies as this ServiceAccount",
            )

    async def apply_objects(
        self,
        namespace: str,
        job: str,
        spec: DeployJobSpec,
        run: int,
        objects: Sequence[Mapping[str, Any]],
    ) -> dict[ObjectRef, int]:
        scopes = await self.scopes(objects)
        try:
            prepared = prepare(
                objects,
                job=job,
                job_namespace=namespace,
                target_namespace=spec.target_namespace or namespace,
                run=run,
                namespaced=scopes,
            )
        except ManifestError as e:
            raise ApplyFailure("InvalidManifest", str(e)) from None
        client = self.as_job(namespace, spec)
        generations: dict[ObjectRef, int] = {}
        for obj in prepared:
            generations[ref_of(obj)] = await self.apply_one(client, obj, prepared)
        return generations

    async def scopes(self, objects: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], bool]:
        """(apiVersion, kind) → namespaced, from discovery or from a CRD in the same manifests."""
        defined = crds_defined(objects)
        scopes: dict[tuple[str, str], bool] = {}
        for obj in objects:
            key = (obj["apiVersion"], obj["kind"])
            if key in scopes:
                continue
            try:
                scopes[key] = (await self.cluster.resource(*key)).namespaced
            except UnknownKind:
                if key not in defined:
                    raise ApplyFailure(
                        "UnknownKind",
                        f"{obj['kind']} {obj['metadata']['name']}: the API server "
                        f"does not know kind {obj['kind']} in {obj['apiVersion']} "
                        "(is its CRD installed?)",
                    ) from None
                scopes[key] = defined[key]
        return scopes

    async def apply_one(
        self, client: ClusterAPI, obj: Mapping[str, Any], everything: Sequence[Mapping[str, Any]]
    ) -> int:
        """Apply one object; returns its metadata.generation as the API server stored it."""
        ref = ref_of(obj)
        deadline = time.monotonic() + CRD_WAIT_SECONDS
        while True:
            try:
                applied = await client.apply(obj)
                return int((applied.get("metadata") or {}).get("generation") or 0)
            except UnknownKind:
                # Its CRD is in the same manifests and was just applied: wait until Established.
                if time.monotonic() > deadline:
                    raise ApplyFailure(
                        "UnknownKind",
                        f"{ref.describe()}: kind {ref.kind} in "
                        f"{ref.api_version} was not served within "
                        f"{CRD_WAIT_SECONDS:.0f}s of applying its CRD",
                    ) from None
                self.cluster.forget_kinds(ref.api_version)
                await asyncio.sleep(0.5)
            except ApiError as e:
                # Server-side apply answers 500 for a field of the wrong type: not transient.
                if e.transient or isinstance(e, Unauthorized):
                    raise  # the caller retries the whole step, or blames the credentials
                reason = "Forbidden" if isinstance(e, Forbidden) else "ApplyFailed"
                who = f" as {client.user}" if client.user else ""
                raise ApplyFailure(
                    reason, f"applying {ref.describe()}{who} failed: {e.message}"
                ) from None

    async def prune(self, namespace: str, spec: DeployJobSpec, refs: Iterable[ObjectRef]) -> None:
        """Delete objects this job applied before and no longer has, as the job's identity."""
        client = self.as_job(namespace, spec)
        for ref in refs:
            try:
                await client.delete(ref.api_version, ref.kind, ref.namespace, ref.name)
            except UnknownKind:
                continue

    # --- last good manifests, for rollbackOnFailure --------------------------------------------

    async def save_last_good(
        self, namespace: str, job: str, uid: str, spec: DeployJobSpec, run: int, revision: str
    ) -> None:
        if not spec.rollback_on_failure:
            return
        objects = await self.load(namespace, spec)
        payload = json.dumps({"run": run, "revision": revision, "objects": objects})
        metadata: dict[str, Any] = {
            "name": snapshot_name(job),
            "namespace": namespace,
            "labels": {LABEL_JOB: job, LABEL_JOB_NAMESPACE: namespace},
        }
        # In another cluster the DeployJob does not exist, and an owner that does not exist
        # makes the garbage collector delete the snapshot: it is deleted with the DeployJob.
        if not self.remote:
            metadata["ownerReferences"] = [
                {
                    "apiVersion": f"{GROUP}/v1alpha1",
                    "kind": "DeployJob",
                    "name": job,
                    "uid": uid,
                    "controller": True,
                }
            ]
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "deploybell.io/last-good",
            "metadata": metadata,
            "data": {"snapshot.json": base64.b64encode(payload.encode()).decode()},
        }
        # Written as the job's identity: in lockdown mode the operator itself writes no Secrets.
        await self.as_job(namespace, spec).apply(secret)

    async def load_last_good(
        self, namespace: str, job: str, spec: DeployJobSpec
    ) -> Snapshot | None:
        reader = self.as_job(namespace, spec)
        secret = await reader.get("v1", "Secret", namespace, snapshot_name(job))
        raw = ((secret or {}).get("data") or {}).get("snapshot.json")
        if not raw:
            return None
        data = json.loads(base64.b64decode(raw))
        return Snapshot(int(data["run"]), str(data["revision"]), list(data["objects"]))

    async def forget_last_good(self, namespace: str, job: str, spec: DeployJobSpec) -> None:
        """Delete the snapshot (a deleted DeployJob's, in a cluster where nothing owns it)."""
        await self.as_job(namespace, spec).delete("v1", "Secret", namespace, snapshot_name(job))

    async def apply_snapshot(
        self, namespace: str, job: str, snapshot: Snapshot, spec: DeployJobSpec, run: int
    ) -> dict[ObjectRef, int]:
        return await self.apply_objects(namespace, job, spec, run, snapshot.objects)


def crds_defined(objects: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], bool]:
    """(apiVersion, kind) → namespaced, for every CRD among the objects."""
    out: dict[tuple[str, str], bool] = {}
    for obj in objects:
        if obj.get("kind") != "CustomResourceDefinition":
            continue
        spec = obj.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or []:
            if kind and version.get("name"):
                out[(f"{spec.get('group')}/{version['name']}", kind)] = (
                    spec.get("scope") != "Cluster"
                )
    return out
