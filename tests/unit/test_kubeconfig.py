# ruff: noqa: E501  (tables of cases read better one per line)
"""spec.cluster and the target cluster's kubeconfig: parsed, checked, refused with a reason."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
import yaml

from deploybell.api.deployjob import ClusterRef, parse_deployjob
from deploybell.api.errors import SpecError
from deploybell.api.kubeconfig import KubeConfigError, parse_kubeconfig
from deploybell.clients.errors import (
    CertificateInvalid,
    Forbidden,
    NotFound,
    ServerError,
    Unauthorized,
    Unreachable,
)
from deploybell.deploy.target import target_failure, wait_for_target

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


GOOD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "prod",
    "contexts": [{"name": "prod", "context": {"cluster": "c", "user": "u", "namespace": "x"}}],
    "clusters": [
        {"name": "c", "cluster": {"server": "https://10.0.0.1:6443", "certificate-authority-data": b64(CA)}}
    ],
    "users": [{"name": "u", "user": {"token": "abc.def"}}],
}  # fmt: skip


def config(**changes: Any) -> str:
    """GOOD with `cluster` / `user` fields changed (None removes one)."""
    doc = copy.deepcopy(GOOD)
    for section, key in (("cluster", "clusters"), ("user", "users")):
        for field, value in (changes.get(section) or {}).items():
            body = doc[key][0][section]
            if value is None:
                body.pop(field, None)
            else:
                body[field] = value
    return yaml.safe_dump(doc)


def test_a_token_kubeconfig() -> None:
    parsed = parse_kubeconfig(config())
    assert (parsed.context, parsed.server, parsed.token) == (
        "prod",
        "https://10.0.0.1:6443",
        "abc.def",
    )
    assert parsed.ca_pem == CA.encode()
    assert "abc.def" not in repr(parsed)


def test_a_client_certificate_kubeconfig() -> None:
    parsed = parse_kubeconfig(
        config(
            user={"token": None, "client-certificate-data": b64(CA), "client-key-data": b64(KEY)}
        )
    )
    assert (parsed.client_cert_pem, parsed.client_key_pem, parsed.token) == (
        CA.encode(),
        KEY.encode(),
        "",
    )


def test_the_only_context_is_current_when_none_is_named() -> None:
    doc = copy.deepcopy(GOOD)
    del doc["current-context"]
    assert parse_kubeconfig(yaml.safe_dump(doc)).context == "prod"


def test_fingerprint_follows_server_and_credentials() -> None:
    one = parse_kubeconfig(config())
    assert one.fingerprint == parse_kubeconfig(config()).fingerprint
    assert one.fingerprint != parse_kubeconfig(config(user={"token": "rotated"})).fingerprint
    other = parse_kubeconfig(config(cluster={"server": "https://10.0.0.2"}))
    assert one.fingerprint != other.fingerprint


REFUSED = [
    ("exec", config(user={"exec": {"command": "/bin/sh", "apiVersion": "x"}}), "users[u].user.exec: runs a program"),
    ("auth-provider", config(user={"auth-provider": {"name": "gcp"}}), "auth-provider plugin; refused"),
    ("tokenFile", config(user={"token": None, "tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}),
     "users[u].user.tokenFile: names a file, which would be read from the operator's own pod; refused. Put the content in token"),
    ("client-key path", config(user={"client-certificate": "/etc/c.crt", "client-key": "/etc/c.key"}), "names a file"),
    ("ca path", config(cluster={"certificate-authority-data": None, "certificate-authority": "/etc/ca"}),
     "clusters[c].cluster.certificate-authority: names a file"),
    ("basic auth", config(user={"username": "a", "password": "b"}), "basic authentication"),
    ("impersonation", config(user={"as": "admin"}), "use spec.serviceAccountName"),
    ("unknown user field", config(user={"frobnicate": 1}), "users[u].user.frobnicate: not supported"),
    ("proxy", config(cluster={"proxy-url": "http://proxy:3128"}), "proxy-url: not supported"),
    ("http", config(cluster={"server": "http://10.0.0.1"}), "must be an https:// URL"),
    ("no server", config(cluster={"server": None}), "clusters[c].cluster.server: is required"),
    ("ca not base64", config(cluster={"certificate-authority-data": "%%%"}), "is not valid base64"),
    ("ca not pem", config(cluster={"certificate-authority-data": b64("hello")}), "is not a PEM certificate"),
    ("insecure with ca", config(cluster={"insecure-skip-tls-verify": True}), "exclude each other"),
    ("cert without key", config(user={"client-certificate-data": b64(CA)}), "go together"),
    ("not yaml", "clusters: [\n", "is not valid YAML"),
    ("a list", "- a\n- b\n", "is not a kubeconfig"),
    ("no context", yaml.safe_dump({**GOOD, "current-context": "ghost"}), "contexts: no entry named 'ghost'"),
    ("too big", "x" * 600_000, "larger than 512 KiB"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragment"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused_kubeconfigs_say_why(text: str, fragment: str) -> None:
    with pytest.raises(KubeConfigError) as caught:
        parse_kubeconfig(text)
    assert fragment in str(caught.value)


def test_insecure_without_ca_is_allowed() -> None:
    parsed = parse_kubeconfig(
        config(cluster={"certificate-authority-data": None, "insecure-skip-tls-verify": True})
    )
    assert parsed.insecure
    assert not parsed.ca_pem


# --- spec.cluster ---------------------------------------------------------------------------------

MANIFESTS = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}]


def test_spec_cluster_defaults_the_key_to_value_as_flux() -> None:
    spec = parse_deployjob(
        {"manifests": MANIFESTS, "cluster": {"kubeConfig": {"secretRef": {"name": "prod"}}}}
    )
    assert spec.cluster == ClusterRef("prod", "value", "")
    full = {
        "name": "gke_acme_europe-west1_prod",
        "kubeConfig": {"secretRef": {"name": "p", "key": "kubeconfig"}},
    }
    assert parse_deployjob({"manifests": MANIFESTS, "cluster": full}).cluster == ClusterRef(
        "p", "kubeconfig", "gke_acme_europe-west1_prod"
    )
    assert parse_deployjob({"manifests": MANIFESTS}).cluster is None


@pytest.mark.parametrize(
    ("cluster", "field"),
    [
        ({}, "spec.cluster.kubeConfig"),
        ({"kubeConfig": {}}, "spec.cluster.kubeConfig.secretRef"),
        ({"kubeConfig": {"secretRef": {}}}, "spec.cluster.kubeConfig.secretRef.name"),
        ({"kubeConfig": {"secretRef": {"name": "Bad_Name"}}}, "spec.cluster.kubeConfig.secretRef.name"),
        ({"kubeConfig": {"secretRef": {"name": "a", "key": "a b"}}}, "spec.cluster.kubeConfig.secretRef.key"),
        ({"kubeConfig": {"secretRef": {"name": "a"}}, "name": "-x"}, "spec.cluster.name"),
        ({"kubeConfig": {"secretRef": {"name": "a"}}, "server": "x"}, "spec.cluster.server"),
    ],
)  # fmt: skip
def test_invalid_spec_cluster(cluster: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_deployjob({"manifests": MANIFESTS, "cluster": cluster})
    assert caught.value.field == field


# --- what a target cluster's error means for the run ----------------------------------------------


def tagged(error: Any) -> Any:
    error.cluster = "https://b:6443"
    return error


def test_errors_that_end_the_run_now() -> None:
    assert target_failure("b", tagged(Unauthorized("Unauthorized", "no"))) == (
        "InvalidKubeConfig",
        "cluster b refused the kubeconfig's credentials (401 Unauthorized: no)",
    )
    reason, message = target_failure("b", tagged(CertificateInvalid("x", "does not verify"))) or (
        "",
        "",
    )
    assert (reason, message) == (
        "ClusterUnreachable",
        "cluster b at https://b:6443: does not verify",
    )
    assert (
        target_failure("b", tagged(Forbidden("Forbidden", "pods is forbidden")))[0] == "Forbidden"
    )  # type: ignore[index]
    assert target_failure("b", tagged(NotFound("NotFound", "gone")))[0] == "ApplyFailed"  # type: ignore[index]
    for transient in (Unreachable("Unreachable", "refused"), ServerError("x", "boom", 503)):
        assert target_failure("b", tagged(transient)) is None


def test_an_outage_is_waited_for_within_max_wait_then_fails() -> None:
    error = tagged(Unreachable("Unreachable", "connection refused"))
    first = wait_for_target("b", error, elapsed=3, limit=600, failures=1)
    assert (first.give_up, first.reason, first.delay) == (False, "WaitingForCluster", 2.0)
    assert first.message == "waiting for cluster b (up to maxWaitSeconds=600): connection refused"
    assert wait_for_target("b", error, 3, 600, 9).delay == 15.0
    assert wait_for_target("b", error, 599, 600, 9).delay == pytest.approx(1.0)
    late = wait_for_target("b", error, 600.5, 600, 9)
    assert (late.give_up, late.reason) == (True, "ClusterUnreachable")
    assert late.message == "cluster b did not answer within maxWaitSeconds=600: connection refused"
