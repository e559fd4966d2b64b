"""Manifests: parsing YAML sources, checking, preparing (namespace, labels, order), digests."""

import copy
import re
from typing import Any

import pytest

from deploybell.api.constants import LABEL_JOB, LABEL_JOB_NAMESPACE, LABEL_RUN
from deploybell.deploy.manifests import (
    ManifestError,
    ObjectRef,
    check_object,
    digest,
    parse_documents,
    prepare,
    ref_of,
)

SOURCE = "ConfigMap web-manifests key app.yaml"

# --- parse_documents --------------------------------------------------------------------------

MULTI_DOC = """\
# The web tier.
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
---
---
# nothing but a comment
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: registry.example.com/shop/web:1.4.3
...
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""

# What `kubectl get cm,svc -o yaml` prints.
KUBECTL_LIST = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: settings, namespace: shop}
  data: {LOG_LEVEL: info}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec:
    ports: [{port: 80}]
---
apiVersion: v1
kind: Secret
metadata: {name: token}
stringData: {token: "s3cr3t"}
"""


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        pytest.param(MULTI_DOC, ["ServiceAccount", "Deployment", "Service"], id="multi-doc"),
        pytest.param(KUBECTL_LIST, ["Namespace", "ConfigMap", "Service", "Secret"], id="list"),
        pytest.param("apiVersion: v1\nkind: List\nitems: []\n", [], id="empty-list"),
        pytest.param("", [], id="empty-text"),
        pytest.param("---\n---\n# only comments\n", [], id="only-empty-docs"),
    ],
)
def test_parse_documents(text: str, kinds: list[str]) -> None:
    assert [o["kind"] for o in parse_documents(text, SOURCE)] == kinds


def test_parse_documents_keeps_the_objects_as_written() -> None:
    objects = parse_documents(KUBECTL_LIST, SOURCE)
    assert objects[1] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"},
        "data": {"LOG_LEVEL": "info"},
    }
    assert objects[3]["stringData"] == {"token": "s3cr3t"}


def test_a_list_without_items_is_kept_as_an_object() -> None:
    # A kind that happens to be called List but has no items list is left to check_object.
    objects = parse_documents("apiVersion: example.com/v1\nkind: List\nmetadata: {name: a}\n", "s")
    assert objects == [{"apiVersion": "example.com/v1", "kind": "List", "metadata": {"name": "a"}}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a: b\n",
            f"{SOURCE}: invalid YAML at line 4, column 10: mapping values are not allowed here",
            id="mapping-in-scalar",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: [a\n",
            f"{SOURCE}: invalid YAML at line 6, column 1: "
            "expected ',' or ']', but got '<stream end>'",
            id="unclosed-flow-sequence",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: settings\n",
            f"{SOURCE}: invalid YAML at line 4, column 1: "
            "found character '\\t' that cannot start any token",
            id="tab-indent",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\n---\n- a\n- b\n",
            f"{SOURCE}: document 2 is a list, not a Kubernetes object",
            id="list-document",
        ),
        pytest.param(
            "---\n---\nhello world\n",
            f"{SOURCE}: document 2 is a str, not a Kubernetes object",
            id="scalar-document",
        ),
        pytest.param("42\n", f"{SOURCE}: document 1 is a int, not a Kubernetes object", id="int"),
    ],
)
def test_parse_documents_rejects(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_documents(text, SOURCE)
    assert str(caught.value) == message


def test_an_unquoted_date_stays_a_string() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: release\n"
        "data:\n  released: 2025-03-02\n"
    )
    [obj] = parse_documents(text, SOURCE)
    assert obj["data"] == {"released": "2025-03-02"}
    assert digest([obj]).startswith("sha256:")


# --- check_object -----------------------------------------------------------------------------


def test_check_object_accepts_a_real_object() -> None:
    for obj in parse_documents(MULTI_DOC + KUBECTL_LIST, SOURCE):
        check_object(obj, SOURCE)
    check_object(
        {
            "apiVersion": "deploybell.io/v1alpha1",
            "kind": "Notification",
            "metadata": {"name": "team-chat"},
            "spec": {"type": "slack", "channel": "#deploys"},
        },
        SOURCE,
    )
    check_object(
        {"apiVersion": "example.com/v1", "kind": "DeployJob", "metadata": {"name": "other"}},
        SOURCE,
    )


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        pytest.param(["a"], f"{SOURCE}: not an object", id="not-a-mapping"),
        pytest.param(
            {"kind": "ConfigMap", "metadata": {"name": "a"}},
            f"{SOURCE}: object has no apiVersion",
            id="no-apiVersion",
        ),
        pytest.param(
            {"apiVersion": "", "kind": "ConfigMap", "metadata": {"name": "a"}},
            f"{SOURCE}: object has no apiVersion",
            id="empty-apiVersion",
        ),
        pytest.param(
            {"apiVersion": "v1", "metadata": {"name": "a"}},
            f"{SOURCE}: object has no kind",
            id="no-kind",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": 3, "metadata": {"name": "a"}},
            f"{SOURCE}: object has no kind",
            id="kind-not-a-string",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "ConfigMap", "data": {}},
            f"{SOURCE}: ConfigMap has no metadata.name",
            id="no-metadata",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": None},
            f"{SOURCE}: ConfigMap has no metadata.name",
            id="null-metadata",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "job-"}},
            f"{SOURCE}: Pod has no metadata.name",
            id="generate-name-only",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": ""}},
            f"{SOURCE}: Pod has no metadata.name",
            id="empty-name",
        ),
        pytest.param(
            {
                "apiVersion": "deploybell.io/v1alpha1",
                "kind": "DeployJob",
                "metadata": {"name": "inner"},
                "spec": {"manifests": []},
            },
            f"{SOURCE}: DeployJob inner cannot deploy another DeployJob "
            "(a DeployJob inside manifests would let runs start runs)",
            id="deployjob-inside-manifests",
        ),
    ],
)
def test_check_object_rejects(obj: Any, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        check_object(obj, SOURCE)
    assert str(caught.value) == message


# --- prepare ----------------------------------------------------------------------------------

SCOPES = {
    ("v1", "Namespace"): False,
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): False,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): False,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): False,
    ("v1", "ServiceAccount"): True,
    ("v1", "ConfigMap"): True,
    ("v1", "Service"): True,
    ("rbac.authorization.k8s.io/v1", "Role"): True,
    ("apps/v1", "Deployment"): True,
}
JOB_LABELS = {LABEL_JOB: "web", LABEL_JOB_NAMESPACE: "ci"}


def obj(api_version: str, kind: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **fields}


def run_prepare(objects: list[dict[str, Any]], run: int = 7) -> list[dict[str, Any]]:
    return prepare(
        objects, job="web", job_namespace="ci", target_namespace="shop", run=run, namespaced=SCOPES
    )


@pytest.mark.parametrize(
    ("manifest", "namespace"),
    [
        pytest.param(obj("v1", "ConfigMap", "settings"), "shop", id="namespaced-defaulted"),
        pytest.param(
            obj("v1", "ConfigMap", "settings", metadata={"name": "settings", "namespace": "ops"}),
            "ops",
            id="namespaced-explicit-kept",
        ),
        pytest.param(obj("example.com/v1", "Widget", "w"), "shop", id="unknown-kind-namespaced"),
        pytest.param(obj("v1", "Namespace", "shop"), None, id="cluster-scoped"),
        pytest.param(
            obj(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                "reader",
                metadata={"name": "reader", "namespace": "ops"},
            ),
            None,
            id="cluster-scoped-namespace-removed",
        ),
    ],
)
def test_prepare_namespace(manifest: dict[str, Any], namespace: str | None) -> None:
    [out] = run_prepare([manifest])
    assert out["metadata"].get("namespace") == namespace
    assert ("namespace" in out["metadata"]) is (namespace is not None)


def test_prepare_defaults_a_null_namespace() -> None:
    manifest = obj("v1", "ConfigMap", "settings", metadata={"name": "settings", "namespace": None})
    [out] = run_prepare([manifest])
    assert out["metadata"]["namespace"] == "shop"


WORKLOADS = [
    pytest.param(
        "apps/v1",
        "Deployment",
        {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "web:1.4.3"}]},
            },
        },
        id="Deployment",
    ),
    pytest.param(
        "apps/v1",
        "StatefulSet",
        {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "db", "image": "postgres:16"}]},
            },
        },
        id="StatefulSet",
    ),
    pytest.param(
        "apps/v1",
        "DaemonSet",
        {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "agent", "image": "agent:2"}]},
            },
        },
        id="DaemonSet",
    ),
    pytest.param(
        "apps/v1",
        "ReplicaSet",
        {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "web:1"}]},
            },
        },
        id="ReplicaSet",
    ),
    pytest.param(
        "batch/v1",
        "Job",
        {
            "backoffLimit": 2,
            # A Job's template often has no metadata at all.
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "migrate", "image": "web:1.4.3"}],
                }
            },
        },
        id="Job",
    ),
]


@pytest.mark.parametrize(("api_version", "kind", "spec"), WORKLOADS)
def test_prepare_labels_workloads_and_their_pod_templates(
    api_version: str, kind: str, spec: dict[str, Any]
) -> None:
    manifest = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
        "spec": spec,
    }
    [out] = run_prepare([manifest], run=7)
    assert out["metadata"]["labels"] == {
        "app": "web",
        "tier": "front",
        **JOB_LABELS,
        LABEL_RUN: "7",
    }
    template = out["spec"]["template"]
    user_labels = (spec["template"].get("metadata") or {}).get("labels") or {}
    # No run label on the template: it would roll every pod on every run.
    assert template["metadata"]["labels"] == {**user_labels, **JOB_LABELS}
    assert template["spec"] == spec["template"]["spec"]
    assert {k: v for k, v in out["spec"].items() if k != "template"} == {
        k: v for k, v in spec.items() if k != "template"
    }


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param(
            obj("v1", "Service", "web", spec={"selector": {"app": "web"}, "ports": [{"port": 80}]}),
            id="Service",
        ),
        pytest.param(
            obj("v1", "ConfigMap", "settings", data={"LOG_LEVEL": "info"}), id="ConfigMap"
        ),
        pytest.param(
            obj(
                "batch/v1",
                "CronJob",
                "nightly",
                spec={"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {}}}},
            ),
            id="CronJob",
        ),
    ],
)
def test_prepare_labels_other_kinds_on_metadata_only(manifest: dict[str, Any]) -> None:
    [out] = run_prepare([manifest], run=12)
    assert out["metadata"]["labels"] == {**JOB_LABELS, LABEL_RUN: "12"}
    rest = {k: v for k, v in out.items() if k != "metadata"}
    assert rest == {k: v for k, v in manifest.items() if k != "metadata"}


def test_prepare_overrides_labels_deploybell_owns() -> None:
    manifest = obj(
        "v1",
        "ConfigMap",
        "settings",
        metadata={"name": "settings", "labels": {LABEL_JOB: "other", LABEL_RUN: "99", "app": "x"}},
    )
    [out] = run_prepare([manifest], run=3)
    assert out["metadata"]["labels"] == {"app": "x", **JOB_LABELS, LABEL_RUN: "3"}


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        pytest.param(
            [obj("apps/v1", "Deployment", "web"), obj("apps/v1", "Deployment", "web")],
            "Deployment web in namespace shop appears twice in the manifests",
            id="identical",
        ),
        pytest.param(
            [
                obj("apps/v1", "Deployment", "web"),
                obj("apps/v1", "Deployment", "web", metadata={"name": "web", "namespace": "shop"}),
            ],
            "Deployment web in namespace shop appears twice in the manifests",
            id="defaulted-equals-explicit",
        ),
        pytest.param(
            [
                obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader"),
                obj(
                    "rbac.authorization.k8s.io/v1",
                    "ClusterRole",
                    "reader",
                    metadata={"name": "reader", "namespace": "x"},
                ),
            ],
            "ClusterRole reader appears twice in the manifests",
            id="cluster-scoped",
        ),
    ],
)
def test_prepare_rejects_duplicates(objects: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        run_prepare(objects)
    assert str(caught.value) == message


def test_prepare_allows_same_name_in_other_namespace_or_kind() -> None:
    objects = [
        obj("apps/v1", "Deployment", "web"),
        obj("apps/v1", "Deployment", "web", metadata={"name": "web", "namespace": "ops"}),
        obj("v1", "Service", "web"),
        obj("v1", "ServiceAccount", "web"),
    ]
    assert len(run_prepare(objects)) == 4


def test_prepare_order() -> None:
    objects = [
        obj("apps/v1", "Deployment", "web"),
        obj("v1", "Service", "web"),
        obj("rbac.authorization.k8s.io/v1", "Role", "deployer"),
        obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "reader"),
        obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader"),
        obj("v1", "ServiceAccount", "web"),
        obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
        obj("example.com/v1", "Widget", "w"),
        obj("v1", "Namespace", "shop"),
        obj("v1", "ConfigMap", "settings"),
    ]
    assert [(o["kind"], o["metadata"]["name"]) for o in run_prepare(objects)] == [
        ("Namespace", "shop"),
        ("CustomResourceDefinition", "widgets.example.com"),
        ("ServiceAccount", "web"),
        ("ClusterRole", "reader"),
        ("Role", "deployer"),
        # Everything else keeps the order it was written in.
        ("Deployment", "web"),
        ("Service", "web"),
        ("ClusterRoleBinding", "reader"),
        ("Widget", "w"),
        ("ConfigMap", "settings"),
    ]


def test_prepare_does_not_touch_its_input() -> None:
    objects = parse_documents(MULTI_DOC + KUBECTL_LIST, SOURCE)
    before = copy.deepcopy(objects)
    prepared = run_prepare(objects)
    assert objects == before
    deployment = next(o for o in prepared if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"][LABEL_JOB] == "web"


# --- digest and refs --------------------------------------------------------------------------

DEPLOYMENT_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 3
  template:
    spec:
      containers: [{name: app, image: "web:1.4.3"}]
"""
DEPLOYMENT_YAML_REORDERED = """\
spec:
  template:
    spec:
      containers: [{image: "web:1.4.3", name: app}]
  replicas: 3
metadata: {labels: {app: web}, name: web}
kind: Deployment
apiVersion: apps/v1
"""


def test_digest_is_stable_across_key_order() -> None:
    first = digest(parse_documents(DEPLOYMENT_YAML, SOURCE))
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", first)
    assert digest(parse_documents(DEPLOYMENT_YAML_REORDERED, SOURCE)) == first


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("replicas: 3", "replicas: 4", id="replicas"),
        pytest.param('"web:1.4.3"', '"web:1.4.4"', id="image"),
        pytest.param("replicas: 3", 'replicas: "3"', id="type"),
    ],
)
def test_digest_changes_with_content(old: str, new: str) -> None:
    changed = DEPLOYMENT_YAML.replace(old, new)
    assert changed != DEPLOYMENT_YAML
    assert digest(parse_documents(changed, SOURCE)) != digest(
        parse_documents(DEPLOYMENT_YAML, SOURCE)
    )


@pytest.mark.parametrize(
    ("ref", "status", "described"),
    [
        pytest.param(
            ObjectRef("apps/v1", "Deployment", "shop", "web"),
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop"},
            "Deployment web in namespace shop",
            id="namespaced",
        ),
        pytest.param(
            ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRole", None, "reader"),
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "name": "reader"},
            "ClusterRole reader",
            id="cluster-scoped",
        ),
    ],
)
def test_object_ref_round_trip(ref: ObjectRef, status: dict[str, str], described: str) -> None:
    assert ref.as_status() == status
    assert ObjectRef.from_status(status) == ref
    # status.resources entries carry more keys; they are ignored.
    assert ObjectRef.from_status({**status, "status": "Current", "message": "ok"}) == ref
    assert ref.describe() == described


def test_ref_of_a_prepared_object() -> None:
    [out] = run_prepare(parse_documents(DEPLOYMENT_YAML, SOURCE))
    assert ref_of(out) == ObjectRef("apps/v1", "Deployment", "shop", "web")
