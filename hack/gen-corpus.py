# ruff: noqa: E501  (a table of cases reads better one per line)
"""Write tests/reliability/corpus/: malformed resources, each with its expected answer.

Each file's first line says what must happen:
  # expect: rejected <text in kubectl's error>        (admission: schema or CEL)
  # expect: failed <Reason> <text in status.message>  (the run fails, naming the problem)
  # expect: notready <text in the Ready condition>    (a Notification the operator refuses)
Run: python hack/gen-corpus.py   (the files are committed; rerun after changing the cases)
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "tests" / "reliability" / "corpus"
DJ = {"apiVersion": "deploybell.io/v1alpha1", "kind": "DeployJob"}
NOTE = {"apiVersion": "deploybell.io/v1alpha1", "kind": "Notification"}
CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
DEPLOY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    },
}
UNSCHEDULABLE = {
    **DEPLOY,
    "spec": {
        **DEPLOY["spec"],
        "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"nodeSelector": {"none": "x"}, "containers": [{"name": "c", "image": "x"}]},
        },
    },
}


def dj(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("manifests", [CM])
    return {**DJ, "metadata": {"name": name}, "spec": spec}


def note(name: str, **spec: Any) -> dict[str, Any]:
    return {**NOTE, "metadata": {"name": name}, "spec": spec}


def secret_doc(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}


def source(name: str, text: str) -> list[dict[str, Any]]:
    """A DeployJob reading `text` from a ConfigMap."""
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-src"},
        "data": {"manifests.yaml": text},
    }
    job = {
        **DJ,
        "metadata": {"name": name},
        "spec": {"manifestsFrom": [{"configMapRef": {"name": f"{name}-src"}}]},
    }
    return [cm, job]


PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_DATA = base64.b64encode(PEM.encode()).decode()


def kubeconfig(cluster: dict[str, Any] | None = None, user: dict[str, Any] | None = None) -> str:
    """A target cluster's kubeconfig (spec.cluster), with `cluster` and `user` fields changed."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "target",
            "contexts": [{"name": "target", "context": {"cluster": "t", "user": "u"}}],
            "clusters": [
                {
                    "name": "t",
                    "cluster": {
                        "server": "https://127.0.0.1:1",
                        "certificate-authority-data": PEM_DATA,
                        **(cluster or {}),
                    },
                }
            ],
            "users": [{"name": "u", "user": user if user is not None else {"token": "t0ken"}}],
        }
    )


def remote(name: str, text: str | None, key: str = "value", **spec: Any) -> list[dict[str, Any]]:
    """A DeployJob deploying into the cluster of a kubeconfig Secret holding `text` at `key`."""
    ref = {"secretRef": {"name": f"{name}-kubeconfig"}}
    job = dj(name, cluster={"kubeConfig": ref}, **spec)
    if text is None:
        return [job]
    return [secret_doc(f"{name}-kubeconfig", {key: text}), job]


CASES: list[tuple[str, str, Any]] = [
    # --- DeployJob: rejected at admission -------------------------------------------------------
    (
        "dj-no-manifests",
        "rejected spec.manifests or spec.manifestsFrom",
        {**DJ, "metadata": {"name": "a"}, "spec": {}},
    ),
    ("dj-empty-manifests", "rejected spec.manifests or spec.manifestsFrom", dj("a", manifests=[])),
    ("dj-max-wait-zero", "rejected maxWaitSeconds", dj("a", maxWaitSeconds=0)),
    ("dj-max-wait-huge", "rejected maxWaitSeconds", dj("a", maxWaitSeconds=99999)),
    ("dj-max-wait-string", "rejected maxWaitSeconds", dj("a", maxWaitSeconds="ten")),
    ("dj-stability-negative", "rejected stabilitySeconds", dj("a", stabilitySeconds=-1)),
    ("dj-stability-huge", "rejected stabilitySeconds", dj("a", stabilitySeconds=301)),
    ("dj-prune-string", "rejected prune", dj("a", prune="yes")),
    ("dj-rollback-number", "rejected rollbackOnFailure", dj("a", rollbackOnFailure=1)),
    ("dj-notify-uppercase", "rejected notify", dj("a", onStart=[{"notify": "Team_Chat"}])),
    ("dj-notify-missing", "rejected notify", dj("a", onSuccess=[{}])),
    ("dj-notify-too-long", "rejected notify", dj("a", always=[{"notify": "n" * 64}])),
    ("dj-hooks-not-a-list", "rejected onFailure", dj("a", onFailure={"notify": "x"})),
    ("dj-target-namespace-bad", "rejected targetNamespace", dj("a", targetNamespace="Not_A_Label")),
    (
        "dj-configmap-no-name",
        "rejected name",
        dj("a", manifests=None, manifestsFrom=[{"configMapRef": {}}]),
    ),
    (
        "dj-manifest-no-kind",
        "rejected kind",
        dj("a", manifests=[{"apiVersion": "v1", "metadata": {"name": "x"}}]),
    ),
    (
        "dj-manifest-no-name",
        "rejected name",
        dj("a", manifests=[{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}]),
    ),
    ("dj-manifest-not-object", "rejected manifests", dj("a", manifests=["kind: ConfigMap"])),
    ("dj-unknown-field", "rejected unknown field", dj("a", maxWaitTime=600)),
    (
        "dj-name-unicode",
        "rejected",
        {**DJ, "metadata": {"name": "déploiement"}, "spec": {"manifests": [CM]}},
    ),
    (
        "dj-name-control-chars",
        "rejected",
        {**DJ, "metadata": {"name": "web\u0007"}, "spec": {"manifests": [CM]}},
    ),
    # --- DeployJob: the run fails with a message naming the problem -------------------------
    (
        "dj-missing-configmap",
        "failed ConfigMapNotFound ConfigMap ghost not found",
        dj("a", manifests=None, manifestsFrom=[{"configMapRef": {"name": "ghost"}}]),
    ),
    (
        "dj-configmap-missing-key",
        "failed ConfigMapKeyNotFound no such key",
        [
            {**CM, "metadata": {"name": "k-src"}, "data": {"other.yaml": "x: 1"}},
            dj("a", manifests=None, manifestsFrom=[{"configMapRef": {"name": "k-src"}}]),
        ],
    ),
    (
        "dj-invalid-yaml",
        "failed InvalidManifest invalid YAML at line 2",
        source("a", "kind: ConfigMap\n  bad: [oops\n"),
    ),
    (
        "dj-yaml-scalar",
        "failed InvalidManifest not a Kubernetes object",
        source("a", "just a string\n"),
    ),
    (
        "dj-yaml-no-apiversion",
        "failed InvalidManifest has no apiVersion",
        source("a", "kind: ConfigMap\nmetadata: {name: x}\n"),
    ),
    (
        "dj-yaml-no-name",
        "failed InvalidManifest has no metadata.name",
        source("a", "apiVersion: v1\nkind: ConfigMap\n"),
    ),
    (
        "dj-yaml-tabs",
        "failed InvalidManifest invalid YAML",
        source("a", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n"),
    ),
    (
        "dj-yaml-duplicate-object",
        "failed InvalidManifest appears twice",
        source(
            "a",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        ),
    ),
    (
        "dj-unknown-kind",
        "failed UnknownKind does not know kind Gizmo",
        dj(
            "a",
            manifests=[
                {"apiVersion": "example.invalid/v1", "kind": "Gizmo", "metadata": {"name": "g"}}
            ],
        ),
    ),
    (
        "dj-unknown-version",
        "failed UnknownKind",
        dj(
            "a",
            manifests=[{"apiVersion": "apps/v9", "kind": "Deployment", "metadata": {"name": "g"}}],
        ),
    ),
    (
        "dj-self-reference",
        "failed InvalidManifest cannot deploy another DeployJob",
        source("a", json.dumps(dj("inner"))),
    ),
    (
        "dj-missing-service-account",
        "failed ServiceAccountNotFound ServiceAccount ghost-sa",
        dj("a", serviceAccountName="ghost-sa"),
    ),
    (
        "dj-invalid-deployment",
        "failed ApplyFailed expected numeric",
        dj("a", manifests=[{**DEPLOY, "spec": {"replicas": "three"}}]),
    ),
    (
        "dj-deployment-no-selector",
        "failed ApplyFailed selector",
        dj("a", manifests=[{**DEPLOY, "spec": {"template": DEPLOY["spec"]["template"]}}]),
    ),
    (
        "dj-bad-label-value",
        "rejected labels",
        dj("a", manifests=[{**CM, "metadata": {"name": "x", "labels": {"k": "not valid!"}}}]),
    ),
    (
        "dj-namespace-missing",
        "failed ApplyFailed",
        dj(
            "a",
            manifests=[
                {**CM, "metadata": {"name": "x", "namespace": "no-such-namespace-anywhere"}}
            ],
        ),
    ),
    (
        "dj-max-wait-short",
        "failed MaxWaitExceeded maxWaitSeconds=1",
        dj(
            "a",
            maxWaitSeconds=1,
            manifests=[
                {
                    **DEPLOY,
                    "spec": {
                        **DEPLOY["spec"],
                        "template": {
                            "metadata": {"labels": {"a": "b"}},
                            "spec": {
                                "nodeSelector": {"none": "x"},
                                "containers": [{"name": "c", "image": "x"}],
                            },
                        },
                    },
                }
            ],
        ),
    ),
    # Near the 1.5 MB object limit: the DeployJob is accepted, the 1.1 MB ConfigMap it holds is not.
    (
        "dj-huge-manifest",
        "rejected Too long",
        dj("a", manifests=[{**CM, "metadata": {"name": "big"}, "data": {"blob": "x" * 1_100_000}}]),
    ),
    (
        "dj-unicode-configmap-name",
        "rejected configMapRef.name",
        dj("a", manifests=None, manifestsFrom=[{"configMapRef": {"name": "ghost-ü"}}]),
    ),
    ("dj-source-revision-branch", "rejected revision", dj("a", source={"revision": "main"})),
    (
        "dj-source-repository-http",
        "rejected repository",
        dj("a", source={"repository": "http://x.example/r"}),
    ),
    (
        "dj-source-committed-at-text",
        "rejected committedAt",
        dj("a", source={"committedAt": "yesterday"}),
    ),
    ("dj-source-unknown-field", "rejected unknown field", dj("a", source={"branch": "main"})),
    ("dj-source-pull-request-zero", "rejected pullRequest", dj("a", source={"pullRequest": 0})),
    (
        "dj-source-pull-request-text",
        "rejected pullRequest",
        dj("a", source={"pullRequest": "#42"}),
    ),
    (
        "dj-source-pull-request-not-the-url",
        "rejected spec.source.pullRequest must be the number spec.source.url names",
        dj("a", source={"pullRequest": 7, "url": "https://github.com/acme/web/pull/42"}),
    ),
    (
        "dj-source-pull-request-not-the-gitea-url",
        "rejected spec.source.pullRequest must be the number spec.source.url names",
        dj("a", source={"pullRequest": 7, "url": "https://gitea.example.com/acme/web/pulls/42"}),
    ),
    # --- DeployJob: a target cluster (spec.cluster) -------------------------------------------
    ("dj-cluster-no-kubeconfig", "rejected kubeConfig", dj("a", cluster={"name": "prod"})),
    (
        "dj-cluster-no-secret-name",
        "rejected name",
        dj("a", cluster={"kubeConfig": {"secretRef": {"key": "value"}}}),
    ),
    (
        "dj-cluster-name-spaces",
        "rejected cluster.name",
        dj("a", cluster={"name": "prod eu", "kubeConfig": {"secretRef": {"name": "k"}}}),
    ),
    (
        "dj-cluster-unknown-field",
        "rejected unknown field",
        dj("a", cluster={"server": "https://x", "kubeConfig": {"secretRef": {"name": "k"}}}),
    ),
    (
        "dj-kubeconfig-secret-missing",
        "failed InvalidKubeConfig Secret a-kubeconfig not found",
        remote("a", None),
    ),
    (
        "dj-kubeconfig-key-missing",
        "failed InvalidKubeConfig key value: no such key (keys: config)",
        remote("a", kubeconfig(), key="config"),
    ),
    (
        "dj-kubeconfig-not-yaml",
        "failed InvalidKubeConfig the kubeconfig is not valid YAML",
        remote("a", "clusters: [oops\n"),
    ),
    (
        "dj-kubeconfig-exec-plugin",
        "failed InvalidKubeConfig users[u].user.exec: runs a program",
        remote("a", kubeconfig(user={"exec": {"command": "/bin/sh", "args": ["-c", "id"]}})),
    ),
    (
        "dj-kubeconfig-auth-provider",
        "failed InvalidKubeConfig users[u].user.auth-provider: is an auth-provider plugin",
        remote("a", kubeconfig(user={"auth-provider": {"name": "oidc"}})),
    ),
    (
        "dj-kubeconfig-token-file",
        "failed InvalidKubeConfig users[u].user.tokenFile: names a file",
        remote(
            "a",
            kubeconfig(user={"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}),
        ),
    ),
    (
        "dj-kubeconfig-client-key-path",
        "failed InvalidKubeConfig users[u].user.client-key: names a file",
        remote(
            "a",
            kubeconfig(user={"client-certificate-data": PEM_DATA, "client-key": "/etc/key.pem"}),
        ),
    ),
    (
        "dj-kubeconfig-ca-path",
        "failed InvalidKubeConfig clusters[t].cluster.certificate-authority: names a file",
        remote(
            "a",
            kubeconfig(cluster={"certificate-authority-data": "", "certificate-authority": "/ca"}),
        ),
    ),
    (
        "dj-kubeconfig-plain-http",
        "failed InvalidKubeConfig must be an https:// URL",
        remote("a", kubeconfig(cluster={"server": "http://127.0.0.1:8080"})),
    ),
    (
        "dj-kubeconfig-unreachable",
        "failed ClusterUnreachable did not answer within maxWaitSeconds=2",
        remote("a", kubeconfig(cluster={"certificate-authority-data": ""}), maxWaitSeconds=2),
    ),
    (
        "dj-kubeconfig-broken-certificate",
        "failed InvalidKubeConfig the certificate authority cannot be loaded",
        remote("a", kubeconfig()),
    ),
    # --- Notification: rejected at admission --------------------------------------------------
    ("n-unknown-type", "rejected type", note("a", type="pigeon", recipients=["x"])),
    ("n-no-type", "rejected type", note("a", recipients=["#x"])),
    (
        "n-slack-no-recipients",
        "rejected recipients",
        note("a", type="slack", secretRef={"name": "s"}),
    ),
    ("n-slack-no-secret", "rejected secretRef", note("a", type="slack", recipients=["#x"])),
    (
        "n-slack-bare-recipient",
        "rejected",
        note("a", type="slack", recipients=["deploys"], secretRef={"name": "s"}),
    ),
    ("n-irc-no-channel", "rejected", note("a", type="irc", recipients=["irc.example.test"])),
    ("n-email-no-at", "rejected", note("a", type="email", recipients=["team-a"])),
    ("n-webhook-no-secret", "rejected secretRef", note("a", type="webhook")),
    ("n-recipients-not-list", "rejected recipients", note("a", type="email", recipients="a@b.c")),
    ("n-duplicate-recipients", "rejected", note("a", type="email", recipients=["a@b.c", "a@b.c"])),
    (
        "n-wrong-options-block",
        "rejected",
        note("a", type="email", recipients=["a@b.c"], slack={"threads": True}),
    ),
    ("n-recipient-too-long", "rejected", note("a", type="email", recipients=["a" * 400 + "@b.c"])),
    (
        "n-discord-username-too-long",
        "rejected spec.discord.username",
        note("a", type="discord", secretRef={"name": "s"}, discord={"username": "d" * 81}),
    ),
    # --- Notification: the operator says why it is not Ready ----------------------------------
    (
        "n-irc-port-range",
        "notready 99999",
        note("a", type="irc", recipients=["irc.example.test:99999#ops"]),
    ),
    (
        "n-template-syntax",
        "notready spec.template.text: line 1",
        note("a", type="email", recipients=["a@b.c"], template={"text": "{{ job }"}),
    ),
    (
        "n-template-loop",
        "notready",
        note("a", type="email", recipients=["a@b.c"], template={"title": "{% for %}"}),
    ),
    (
        "n-discord-thread-id-range",
        "notready spec.recipients[0]: a Discord id is at most 2^64 - 1",
        note("a", type="discord", recipients=["99999999999999999999"], secretRef={"name": "s"}),
    ),
    (
        "n-discord-username-reserved",
        "notready spec.discord.username: must not contain 'discord'",
        note("a", type="discord", secretRef={"name": "s"}, discord={"username": "Discord Bot"}),
    ),
    (
        "n-template-undefined-name",
        "notready spec.template.title: fails to render for a sample start message (UndefinedError: 'verb' is undefined)",
        note("a", type="email", recipients=["a@b.c"], template={"title": "{{ job }} {{ verb }}"}),
    ),
    (
        "n-template-sandbox-escape",
        "notready spec.template.text: fails to render for a sample start message (SecurityError: access to attribute '__class__'",
        note(
            "a", type="email", recipients=["a@b.c"], template={"text": "{{ ''.__class__.__mro__ }}"}
        ),
    ),
    (
        "n-template-index-for-some-events",
        "notready spec.template.text: fails to render for a sample start message (UndefinedError: tuple object has no element 0)",
        note("a", type="email", recipients=["a@b.c"], template={"text": "{{ pods[0].reason }}"}),
    ),
    (
        "n-secret-missing",
        "notready Secret ghost not found",
        note("a", type="webhook", secretRef={"name": "ghost"}),
    ),
    (
        "n-secret-missing-key",
        "notready has no key url",
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "nokey"},
                "stringData": {"uri": "x"},
            },
            note("a", type="webhook", secretRef={"name": "nokey"}),
        ],
    ),
    # --- Beyond the per-type cases below: a bot without recipients, values out of range -----
    (
        "n-mattermost-bot-no-recipients",
        "notready at least one recipient",
        [
            secret_doc("mm", {"token": "x", "url": "https://chat.example.test"}),
            note("a", type="mattermost", secretRef={"name": "mm"}),
        ],
    ),
    (
        "n-mattermost-username-too-long",
        "rejected spec.mattermost.username",
        note("a", type="mattermost", secretRef={"name": "s"}, mattermost={"username": "u" * 65}),
    ),
    (
        "n-rocketchat-bot-no-recipients",
        "notready at least one recipient",
        [
            secret_doc("rc", {"token": "x", "userId": "u", "url": "https://chat.example.test"}),
            note("a", type="rocketchat", secretRef={"name": "rc"}),
        ],
    ),
    (
        "n-zulip-topic-too-long",
        "rejected spec.zulip.topic",
        note(
            "a",
            type="zulip",
            recipients=["#deploys"],
            secretRef={"name": "s"},
            zulip={"topic": "t" * 61},
        ),
    ),
    (
        "n-matrix-msgtype",
        "rejected spec.matrix.msgtype",
        note(
            "a",
            type="matrix",
            recipients=["#ops:example.org"],
            secretRef={"name": "s"},
            matrix={"msgtype": "m.emote"},
        ),
    ),
    (
        "n-pagerduty-severity",
        "rejected spec.pagerduty.severity",
        note("a", type="pagerduty", secretRef={"name": "s"}, pagerduty={"severity": "page"}),
    ),
    (
        "n-apprise-unknown-option",
        "rejected spec.apprise.format",
        note("a", type="apprise", secretRef={"name": "s"}, apprise={"format": "html"}),
    ),
]


def per_type_cases() -> list[tuple[str, str, Any]]:
    """For every registered provider type: a recipient it refuses, a Secret without the keys it
    needs, an option of the wrong kind. New types get their cases from their declaration."""
    from deploybell.notify.providers import CATALOGUE

    cases: list[tuple[str, str, Any]] = []
    for rules in CATALOGUE.types:
        t = rules.type
        ref = {"secretRef": {"name": "creds"}} if rules.needs_secret else {}
        good = list(rules.recipients.valid[:1])
        if not rules.recipients.taken:
            expect = "rejected takes no recipients"
            cases.append((f"n-{t}-recipients", expect, note("a", type=t, recipients=["x"], **ref)))
        else:
            bad = rules.recipients.invalid[0]
            pattern = rules.recipients.pattern
            by_cel = pattern is not None and not re.fullmatch(pattern, bad)
            expect = "rejected recipient" if by_cel else f"notready {rules.recipient_problem(bad)}"
            cases.append(
                (f"n-{t}-bad-recipient", expect, note("a", type=t, recipients=[bad], **ref))
            )
        if rules.needs_secret:
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "creds"},
                "stringData": {"unrelated": "x"},
            }
            expect = f"notready has no key {rules.secret_wording()}"
            cases.append(
                (
                    f"n-{t}-secret-missing-key",
                    expect,
                    [secret, note("a", type=t, recipients=good, **ref)],
                )
            )
        if rules.options:
            field = rules.options[0]
            wrong = {"boolean": "yes", "string": 7, "integer": "ten", "number": "ten", "map": "x"}
            options = {field.name: wrong[field.type]}
            cases.append(
                (
                    f"n-{t}-option-wrong-type",
                    f"rejected {field.name}",
                    note("a", type=t, recipients=good, **ref, **{t: options}),
                )
            )
    return cases


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.yaml"):
        old.unlink()
    for name, expect, docs in [*CASES, *per_type_cases()]:
        docs = docs if isinstance(docs, list) else [docs]
        text = "\n---\n".join(json.dumps(d, ensure_ascii=False, indent=1) for d in docs)
        (OUT / f"{name}.yaml").write_text(f"# expect: {expect}\n{text}\n", encoding="utf-8")
    print(f"wrote {len(list(OUT.glob('*.yaml')))} files to {OUT}")


if __name__ == "__main__":
    main()
