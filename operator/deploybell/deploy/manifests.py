"""Manifests: parse, check, label, order and digest the objects a DeployJob applies (pure)."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from deploybell.api.constants import GROUP, LABEL_JOB, LABEL_JOB_NAMESPACE, LABEL_RUN

# Kinds whose pods deploybell watches: their pod templates carry the job labels too, so pods can
# be found by label. The labels never change for a given job, so they never trigger a rollout.
POD_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})

# Applied first, in this order: everything else may live in or be defined by them.
FIRST_KINDS = ("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "Role")


class _ManifestLoader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as text, as kubectl does (JSON has no date type)."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class ManifestError(ValueError):
    """A manifest cannot be applied as written; the message names the object and the problem."""


@dataclass(frozen=True)
class ObjectRef:
    """Identifies one applied object."""

    api_version: str
    kind: str
    namespace: str | None
    name: str

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.kind} {self.name}{where}"

    def as_status(self) -> dict[str, str]:
        out = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        return out

    @classmethod
    def from_status(cls, entry: Mapping[str, Any]) -> ObjectRef:
        return cls(entry["apiVersion"], entry["kind"], entry.get("namespace"), entry["name"])


def ref_of(obj: Mapping[str, Any]) -> ObjectRef:
    meta = obj.get("metadata") or {}
    return ObjectRef(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])


def parse_documents(text: str, source: str) -> list[dict[str, Any]]:
    """Multi-document YAML → objects; empty documents are skipped, `List` kinds flattened."""
    try:
        docs = list(yaml.load_all(text, Loader=_ManifestLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ManifestError(f"{source}: invalid YAML{where}: {problem}") from None
    objects: list[dict[str, Any]] = []
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(
                f"{source}: document {index + 1} is a {type(doc).__name__}, not a Kubernetes object"
            )
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            objects.extend(doc["items"])
        else:
            objects.append(doc)
    return objects


def check_object(obj: Any, source: str) -> None:
    """Reject what the API server would reject with a less helpful message."""
    if not isinstance(obj, dict):
        raise ManifestError(f"{source}: not an object")
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str) or not obj[field]:
            raise ManifestError(f"{source}: object has no {field}")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ManifestError(f"{source}: {obj['kind']} has no metadata.name")
    if obj["apiVersion"].split("/")[0] == GROUP and obj["kind"] == "DeployJob":
        raise ManifestError(
            f"{source}: DeployJob {meta['name']} cannot deploy another DeployJob "
            "(a DeployJob inside manifests would let runs start runs)"
        )


def prepare(
    objects: Sequence[Mapping[str, Any]],
    *,
    job: str,
    job_namespace: str,
    target_namespace: str,
    run: int,
    namespaced: Mapping[tuple[str, str], bool],
) -> list[dict[str, Any]]:
    """Copies of the objects, namespaced, labelled and in apply order.

    `namespaced` maps (apiVersion, kind) to whether the kind is namespaced; kinds missing from it
    are treated as namespaced (the API server then says if the kind is unknown).
    """
    prepared: list[dict[str, Any]] = []
    seen: set[ObjectRef] = set()
    for obj in objects:
        out = copy.deepcopy(dict(obj))
        meta = out.setdefault("metadata", {})
        if namespaced.get((out["apiVersion"], out["kind"]), True):
            meta["namespace"] = meta.get("namespace") or target_namespace
        else:
            meta.pop("namespace", None)
        labels = {LABEL_JOB: job, LABEL_JOB_NAMESPACE: job_namespace}
        meta["labels"] = {**(meta.get("labels") or {}), **labels, LABEL_RUN: str(run)}
        if out["kind"] in POD_TEMPLATE_KINDS:
            template = out.setdefault("spec", {}).setdefault("template", {})
            tmeta = template.setdefault("metadata", {})
            tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
        ref = ref_of(out)
        if ref in seen:
            raise ManifestError(f"{ref.describe()} appears twice in the manifests")
        seen.add(ref)
        prepared.append(out)
    return sorted(prepared, key=apply_rank)


def apply_rank(obj: Mapping[str, Any]) -> int:
    kind = obj.get("kind", "")
    return FIRST_KINDS.index(kind) if kind in FIRST_KINDS else len(FIRST_KINDS)


def digest(objects: Iterable[Mapping[str, Any]]) -> str:
    """A short, stable revision digest of what the user asked to apply."""
    canonical = json.dumps(list(objects), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
