"""A target cluster's kubeconfig, from a user's Secret: parsed and checked (pure, no I/O).

Only what can be used without running anything or reading the operator's files is accepted: a
bearer `token` or `client-certificate-data`/`client-key-data`, `certificate-authority-data`,
`insecure-skip-tls-verify` and `tls-server-name`. `exec` and `auth-provider` plugins would run a
program from the Secret; `tokenFile`, `client-certificate`, `client-key` and
`certificate-authority` name files, which inside the operator's pod are the operator's own (its
ServiceAccount token, say). Each is refused with a message naming the field and the way out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

MAX_BYTES = 512 * 1024

_FILES = {
    "tokenFile": "token",
    "client-certificate": "client-certificate-data",
    "client-key": "client-key-data",
    "certificate-authority": "certificate-authority-data",
}
_CLUSTER_FIELDS = {
    "server",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "tls-server-name",
    "disable-compression",
    "extensions",
}
_USER_FIELDS = {"token", "client-certificate-data", "client-key-data", "extensions"}
_REFUSED_USER = {
    "exec": "runs a program (an exec credential plugin); refused: no binary named in a Secret "
    "runs in the operator. Put a token or client-certificate-data/client-key-data here instead",
    "auth-provider": "is an auth-provider plugin; refused (it runs or refreshes credentials "
    "outside the kubeconfig). Put a token or client-certificate-data/client-key-data here instead",
    "username": "is basic authentication, which Kubernetes removed; use a token or a client "
    "certificate",
    "password": "is basic authentication, which Kubernetes removed; use a token or a client "
    "certificate",
    "as": "impersonates in the kubeconfig; use spec.serviceAccountName instead",
    "as-groups": "impersonates in the kubeconfig; use spec.serviceAccountName instead",
    "as-uid": "impersonates in the kubeconfig; use spec.serviceAccountName instead",
    "as-user-extra": "impersonates in the kubeconfig; use spec.serviceAccountName instead",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class KubeConfigError(ValueError):
    """The kubeconfig cannot be used; the message names the field and why."""


@dataclass(frozen=True)
class KubeConfig:
    """What the operator needs to reach one cluster as one identity."""

    context: str
    server: str
    ca_pem: bytes = b""
    insecure: bool = False
    tls_server_name: str = ""
    token: str = ""
    client_cert_pem: bytes = b""
    client_key_pem: bytes = b""

    @property
    def fingerprint(self) -> str:
        """Equal for the same server and credentials: one shared client per fingerprint."""
        digest = hashlib.sha256()
        for part in (
            self.server,
            self.tls_server_name,
            str(self.insecure),
            self.token,
        ):
            digest.update(part.encode() + b"\0")
        for blob in (self.ca_pem, self.client_cert_pem, self.client_key_pem):
            digest.update(blob + b"\0")
        return digest.hexdigest()[:16]

    def __repr__(self) -> str:  # credentials never reach a log line through a repr
        return f"KubeConfig(context={self.context!r}, server={self.server!r})"


def parse_kubeconfig(text: str) -> KubeConfig:
    """The current context's cluster and user, checked; `KubeConfigError` says what is wrong."""
    if len(text.encode()) > MAX_BYTES:
        raise KubeConfigError(f"is larger than {MAX_BYTES // 1024} KiB")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise KubeConfigError(f"is not valid YAML{where}") from None
    if not isinstance(doc, Mapping):
        raise KubeConfigError("is not a kubeconfig (a YAML mapping with clusters and users)")
    context_name, context = _current_context(doc)
    cluster_name = _text(context.get("cluster"), f"contexts[{context_name}].context.cluster")
    cluster = _named(doc, "clusters", "cluster", cluster_name)
    user_name = context.get("user")
    user = _named(doc, "users", "user", str(user_name)) if user_name else {}
    fields = {**_cluster(cluster_name, cluster), **_user(str(user_name), user)}
    return KubeConfig(context=_clean(context_name), **fields)


def _current_context(doc: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    contexts = doc.get("contexts") or []
    if not isinstance(contexts, list):
        raise KubeConfigError("contexts: must be a list")
    current = doc.get("current-context")
    if not current:
        if len(contexts) != 1:
            raise KubeConfigError(
                f"has no current-context (and {len(contexts)} contexts to choose from)"
            )
        current = (contexts[0] or {}).get("name") if isinstance(contexts[0], Mapping) else None
    name = _text(current, "current-context")
    return name, _named(doc, "contexts", "context", name)


def _named(doc: Mapping[str, Any], section: str, key: str, name: str) -> Mapping[str, Any]:
    entries = doc.get(section) or []
    if not isinstance(entries, list):
        raise KubeConfigError(f"{section}: must be a list")
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            body = entry.get(key) or {}
            if not isinstance(body, Mapping):
                raise KubeConfigError(f"{section}[{name}].{key}: must be a mapping")
            return body
    raise KubeConfigError(f"{section}: no entry named {_clean(name)!r}")


def _cluster(name: str, cluster: Mapping[str, Any]) -> dict[str, Any]:
    where = f"clusters[{_clean(name)}].cluster"
    _refuse(cluster, where, _CLUSTER_FIELDS, {})
    server = _text(cluster.get("server"), f"{where}.server")
    if not re.fullmatch(r"https://[^\s/?#]+(/[^\s?#]*)?", server):
        raise KubeConfigError(
            f"{where}.server: must be an https:// URL of the API server, got {_clean(server)!r}"
        )
    insecure = cluster.get("insecure-skip-tls-verify") or False
    if not isinstance(insecure, bool):
        raise KubeConfigError(f"{where}.insecure-skip-tls-verify: must be true or false")
    ca = _pem(cluster.get("certificate-authority-data"), f"{where}.certificate-authority-data",
              "CERTIFICATE")  # fmt: skip
    if insecure and ca:
        raise KubeConfigError(
            f"{where}: certificate-authority-data and insecure-skip-tls-verify exclude each "
            "other (as for kubectl)"
        )
    server_name = cluster.get("tls-server-name") or ""
    if not isinstance(server_name, str) or _CONTROL.search(server_name):
        raise KubeConfigError(f"{where}.tls-server-name: must be a host name")
    return {
        "server": server.rstrip("/"),
        "ca_pem": ca,
        "insecure": insecure,
        "tls_server_name": server_name,
    }


def _user(name: str, user: Mapping[str, Any]) -> dict[str, Any]:
    where = f"users[{_clean(name)}].user"
    _refuse(user, where, _USER_FIELDS, _REFUSED_USER)
    token = user.get("token") or ""
    if not isinstance(token, str) or _CONTROL.search(token.strip()):
        raise KubeConfigError(f"{where}.token: must be a single-line string")
    cert = _pem(user.get("client-certificate-data"), f"{where}.client-certificate-data",
                "CERTIFICATE")  # fmt: skip
    key = _pem(user.get("client-key-data"), f"{where}.client-key-data", "PRIVATE KEY")
    if bool(cert) != bool(key):
        raise KubeConfigError(
            f"{where}: client-certificate-data and client-key-data go together (one is missing)"
        )
    return {"token": token.strip(), "client_cert_pem": cert, "client_key_pem": key}


def _refuse(
    block: Mapping[str, Any], where: str, allowed: set[str], refused: Mapping[str, str]
) -> None:
    for field in block:
        if field in _FILES:
            raise KubeConfigError(
                f"{where}.{field}: names a file, which would be read from the operator's own "
                f"pod; refused. Put the content in {_FILES[field]} instead"
            )
        if field in refused:
            raise KubeConfigError(f"{where}.{field}: {refused[field]}")
        if field not in allowed:
            raise KubeConfigError(f"{where}.{_clean(str(field))}: not supported")


def _pem(value: Any, where: str, label: str) -> bytes:
    """base64 of a PEM block (as kubectl writes it) → the PEM bytes; b"" when absent."""
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise KubeConfigError(f"{where}: must be base64 text")
    try:
        pem = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KubeConfigError(f"{where}: is not valid base64") from None
    if b"-----BEGIN " not in pem or label.encode() not in pem:
        raise KubeConfigError(f"{where}: is not a PEM {label.lower()} (after base64 decoding)")
    return pem


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise KubeConfigError(f"{where}: is required")
    return value


def _clean(value: str) -> str:
    """A kubeconfig value safe to show: no control characters, bounded."""
    return _CONTROL.sub("", value)[:253]
