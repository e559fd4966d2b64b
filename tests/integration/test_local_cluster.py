"""The local cluster behaves like a real one: nodes, controllers and kwok's pod lifecycle."""

from __future__ import annotations

from typing import Any

from tests.support.cluster import ClusterAccess, condition, wait_for

IMAGE = "registry.invalid/app:1"  # never pulled: kwok fakes the containers


def pod_template(
    labels: dict[str, str], annotations: dict[str, str] | None = None, restart: str = "Always"
) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels, "annotations": annotations or {}},
        "spec": {"restartPolicy": restart, "containers": [{"name": "app", "image": IMAGE}]},
    }


def deployment(name: str, replicas: int = 3, **template: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": pod_template(labels, **template),
        },
    }


def job(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": pod_template({"job": name}, annotations, restart="Never"),
        },
    }


def test_kwok_nodes_are_ready(cluster: ClusterAccess) -> None:
    out = cluster.kubectl(
        "get",
        "nodes",
        "-l",
        "type=kwok",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}="
        '{.status.conditions[?(@.type=="Ready")].status} {end}',
    )
    states = dict(pair.split("=") for pair in out.split())
    assert len(states) >= 2, f"expected at least 2 kwok nodes, got {states}"
    assert set(states.values()) == {"True"}, states


def test_deployment_becomes_available(cluster: ClusterAccess, namespace: str) -> None:
    cluster.apply(deployment("web"), namespace)

    def available() -> dict[str, Any] | None:
        obj = cluster.get("deployment", "web", namespace)
        cond = condition(obj, "Available")
        ok = cond and cond["status"] == "True" and obj["status"].get("updatedReplicas") == 3
        return obj if ok else None

    obj = wait_for("deployment web Available with 3 updated replicas", available)
    assert obj["status"]["readyReplicas"] == 3


def test_failing_pods_exceed_the_progress_deadline(cluster: ClusterAccess, namespace: str) -> None:
    manifest = deployment("broken", annotations={"deploybell.test/fail": "CrashLoopBackOff"})
    manifest["spec"]["progressDeadlineSeconds"] = 10
    cluster.apply(manifest, namespace)

    def deadline_exceeded() -> dict[str, Any] | None:
        cond = condition(cluster.get("deployment", "broken", namespace), "Progressing")
        return cond if cond and cond.get("reason") == "ProgressDeadlineExceeded" else None

    cond = wait_for("Progressing=False/ProgressDeadlineExceeded", deadline_exceeded, timeout=90)
    assert cond["status"] == "False"
    pods = cluster.kubectl(
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        "app=broken",
        "-o",
        "jsonpath={.items[*].status.containerStatuses[0].state.waiting.reason}",
    )
    assert set(pods.split()) == {"CrashLoopBackOff"}, pods


def test_image_pull_failure_keeps_pods_pending(cluster: ClusterAccess, namespace: str) -> None:
    manifest = deployment(
        "nopull", replicas=1, annotations={"deploybell.test/fail": "ImagePullBackOff"}
    )
    cluster.apply(manifest, namespace)

    def waiting_reason() -> str:
        return cluster.kubectl(
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            "app=nopull",
            "-o",
            "jsonpath={.items[*].status.containerStatuses[0].state.waiting.reason}",
        )

    assert wait_for("pod in ImagePullBackOff", waiting_reason).split() == ["ImagePullBackOff"]
    phase = cluster.kubectl(
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        "app=nopull",
        "-o",
        "jsonpath={.items[*].status.phase}",
    )
    assert phase.split() == ["Pending"]


def test_statefulset_rolls_out(cluster: ClusterAccess, namespace: str) -> None:
    labels = {"app": "db"}
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "serviceName": "db",
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": pod_template(labels),
            },
        },
        namespace,
    )
    out = cluster.kubectl("rollout", "status", "statefulset/db", "-n", namespace, "--timeout=90s")
    assert "roll out complete" in out or "rolling update complete" in out, out


def test_daemonset_rolls_out_on_every_node(cluster: ClusterAccess, namespace: str) -> None:
    labels = {"app": "agent"}
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": labels}, "template": pod_template(labels)},
        },
        namespace,
    )
    cluster.kubectl("rollout", "status", "daemonset/agent", "-n", namespace, "--timeout=90s")
    status = cluster.get("daemonset", "agent", namespace)["status"]
    nodes = cluster.kubectl("get", "nodes", "-l", "type=kwok", "-o", "name").split()
    assert status["numberReady"] == status["desiredNumberScheduled"] == len(nodes)


def test_job_completes(cluster: ClusterAccess, namespace: str) -> None:
    cluster.apply(job("migrate"), namespace)

    def complete() -> dict[str, Any] | None:
        cond = condition(cluster.get("job", "migrate", namespace), "Complete")
        return cond if cond and cond["status"] == "True" else None

    wait_for("job migrate Complete=True", complete, timeout=90)
    assert cluster.get("job", "migrate", namespace)["status"]["succeeded"] == 1


def test_job_with_failing_pods_fails(cluster: ClusterAccess, namespace: str) -> None:
    cluster.apply(job("crash", annotations={"deploybell.test/fail": "Error"}), namespace)

    def failed() -> dict[str, Any] | None:
        cond = condition(cluster.get("job", "crash", namespace), "Failed")
        return cond if cond and cond["status"] == "True" else None

    cond = wait_for("job crash Failed=True", failed, timeout=90)
    assert cond["reason"] == "BackoffLimitExceeded", cond
    exit_codes = cluster.kubectl(
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        "job=crash",
        "-o",
        "jsonpath={.items[*].status.containerStatuses[0].state.terminated.exitCode}",
    )
    assert "1" in exit_codes.split()
