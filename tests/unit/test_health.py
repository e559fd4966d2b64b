"""Health evaluation against object shapes as the API server returns them."""

from typing import Any

import pytest
import yaml

from deploybell.deploy.health import (
    FAILING_WAITING_REASONS,
    PodProblem,
    Status,
    evaluate,
    pod_is_ready,
    pod_problems,
    pod_restart_total,
)


def load(manifest: str) -> dict[str, Any]:
    """Parse one object written the way `kubectl get -o yaml` prints it."""
    obj = yaml.safe_load(manifest)
    assert isinstance(obj, dict)
    return obj


def assert_health(manifest: str, status: Status, reason: str, fragment: str) -> None:
    """Evaluate the object and check status, reason, that it is named, and the detail."""
    obj = load(manifest)
    health = evaluate(obj)
    assert (health.status, health.reason) == (status, reason), health.message
    title = f"{obj['kind']} {obj['metadata']['name']}"
    assert health.message.startswith((f"{title}: ", f"{title} ")), health.message
    assert fragment in health.message


CASES = ("manifest", "status", "reason", "fragment")


# --- Deployment --------------------------------------------------------------------------------

DEPLOYMENT_ROLLED_OUT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  uid: 5b0e3c1a-8f0e-4c2b-9a57-2f1d7c3e9b10
  resourceVersion: "184467"
  generation: 3
  creationTimestamp: "2025-03-02T09:12:44Z"
  annotations:
    deployment.kubernetes.io/revision: "3"
spec:
  replicas: 3
  progressDeadlineSeconds: 600
  revisionHistoryLimit: 10
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: registry.example.com/shop/web:1.4.2
status:
  observedGeneration: 3
  replicas: 3
  updatedReplicas: 3
  readyReplicas: 3
  availableReplicas: 3
  conditions:
  - type: Available
    status: "True"
    reason: MinimumReplicasAvailable
    message: Deployment has minimum availability.
    lastTransitionTime: "2025-03-02T09:13:01Z"
    lastUpdateTime: "2025-03-02T09:13:01Z"
  - type: Progressing
    status: "True"
    reason: NewReplicaSetAvailable
    message: ReplicaSet "web-7d9f8b6c5d" has successfully progressed.
    lastTransitionTime: "2025-03-02T09:12:44Z"
    lastUpdateTime: "2025-03-02T10:41:09Z"
"""

DEPLOYMENT_CASES = [
    pytest.param(
        DEPLOYMENT_ROLLED_OUT, Status.CURRENT, "", "3 replicas updated and available", id="current"
    ),
    pytest.param(
        DEPLOYMENT_ROLLED_OUT.replace("generation: 3", "generation: 4"),
        Status.IN_PROGRESS,
        "",
        "generation 4 not yet observed",
        id="generation-not-observed",
    ),
    pytest.param(
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 1, resourceVersion: "1201"}
spec: {replicas: 3, progressDeadlineSeconds: 600, selector: {matchLabels: {app: web}}}
status:
  observedGeneration: 1
  conditions:
  - type: Available
    status: "False"
    reason: MinimumReplicasUnavailable
    message: Deployment does not have minimum availability.
    lastTransitionTime: "2025-03-02T09:12:44Z"
    lastUpdateTime: "2025-03-02T09:12:44Z"
  - type: Progressing
    status: "True"
    reason: NewReplicaSetCreated
    message: Created new replica set "web-7d9f8b6c5d"
    lastTransitionTime: "2025-03-02T09:12:44Z"
    lastUpdateTime: "2025-03-02T09:12:44Z"
""",
        Status.IN_PROGRESS,
        "",
        "0/3 replicas updated",
        id="just-created",
    ),
    pytest.param(
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 4, resourceVersion: "190022"}
spec: {replicas: 3, progressDeadlineSeconds: 600, selector: {matchLabels: {app: web}}}
status:
  observedGeneration: 4
  replicas: 4
  updatedReplicas: 2
  readyReplicas: 3
  availableReplicas: 3
  unavailableReplicas: 1
  conditions:
  - type: Available
    status: "True"
    reason: MinimumReplicasAvailable
    message: Deployment has minimum availability.
    lastTransitionTime: "2025-03-02T09:13:01Z"
    lastUpdateTime: "2025-03-02T09:13:01Z"
  - type: Progressing
    status: "True"
    reason: ReplicaSetUpdated
    message: ReplicaSet "web-5c4b7d9f86" is progressing.
    lastTransitionTime: "2025-03-02T09:12:44Z"
    lastUpdateTime: "2025-03-02T11:02:17Z"
""",
        Status.IN_PROGRESS,
        "",
        "2/3 replicas updated",
        id="rolling-update",
    ),
    pytest.param(
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 4, resourceVersion: "190071"}
spec: {replicas: 3, progressDeadlineSeconds: 600, selector: {matchLabels: {app: web}}}
status:
  observedGeneration: 4
  replicas: 4
  updatedReplicas: 3
  readyReplicas: 4
  availableReplicas: 4
  conditions:
  - type: Available
    status: "True"
    reason: MinimumReplicasAvailable
    message: Deployment has minimum availability.
    lastTransitionTime: "2025-03-02T09:13:01Z"
    lastUpdateTime: "2025-03-02T09:13:01Z"
  - type: Progressing
    status: "True"
    reason: ReplicaSetUpdated
    message: ReplicaSet "web-5c4b7d9f86" is progressing.
    lastTransitionTime: "2025-03-02T09:12:44Z"
    lastUpdateTime: "2025-03-02T11:02:40Z"
""",
        Status.IN_PROGRESS,
        "",
        "1 old replica pending termination",
        id="old-replica-still-running",
    ),
    pytest.param(
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 4, resourceVersion: "190102"}
spec: {replicas: 3, progressDeadlineSeconds: 600, selector: {matchLabels: {app: web}}}
status:
  observedGeneration: 4
  replicas: 3
  updatedReplicas: 3
  readyReplicas: 1
  availableReplicas: 1
  unavailableReplicas: 2
  conditions:
  - type: Available
    status: "False"
    reason: MinimumReplicasUnavailable
    message: Deployment does not have minimum availability.
    lastTransitionTime: "2025-03-02T11:02:41Z"
    lastUpdateTime: "2025-03-02T11:02:41Z"
  - type: Progressing
    status: "True"
    reason: ReplicaSetUpdated
    message: ReplicaSet "web-5c4b7d9f86" is progressing.
    lastTransitionTime: "2025-03-02T09:12:44Z"
    lastUpdateTime: "2025-03-02T11:02:41Z"
""",
        Status.IN_PROGRESS,
        "",
        "1 of 3 updated replicas are available",
        id="updated-not-available",
    ),
    pytest.param(
        DEPLOYMENT_ROLLED_OUT.replace(
            "reason: NewReplicaSetAvailable", "reason: ReplicaSetUpdated"
        ),
        Status.IN_PROGRESS,
        "",
        "waiting for the new ReplicaSet",
        id="counts-match-before-controller-confirms",
    ),
    pytest.param(
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 5, resourceVersion: "193310"}
spec: {replicas: 3, progressDeadlineSeconds: 600, selector: {matchLabels: {app: web}}}
status:
  observedGeneration: 5
  replicas: 4
  updatedReplicas: 1
  readyReplicas: 3
  availableReplicas: 3
  unavailableReplicas: 1
  conditions:
  - type: Available
    status: "True"
    reason: MinimumReplicasAvailable
    message: Deployment has minimum availability.
    lastTransitionTime: "2025-03-02T09:13:01Z"
    lastUpdateTime: "2025-03-02T09:13:01Z"
  - type: Progressing
    status: "False"
    reason: ProgressDeadlineExceeded
    message: ReplicaSet "web-6f8d9c7b45" has timed out progressing.
    lastTransitionTime: "2025-03-02T11:22:17Z"
    lastUpdateTime: "2025-03-02T11:22:17Z"
""",
        Status.FAILED,
        "ProgressDeadlineExceeded",
        'ReplicaSet "web-6f8d9c7b45" has timed out progressing.',
        id="progress-deadline-exceeded",
    ),
    pytest.param(
        DEPLOYMENT_ROLLED_OUT.replace(
            "  generation: 3\n",
            '  generation: 3\n  deletionTimestamp: "2025-03-02T12:00:00Z"\n'
            "  deletionGracePeriodSeconds: 0\n  finalizers: [foregroundDeletion]\n",
        ),
        Status.TERMINATING,
        "",
        "is being deleted",
        id="terminating",
    ),
]


@pytest.mark.parametrize(CASES, DEPLOYMENT_CASES)
def test_deployment(manifest: str, status: Status, reason: str, fragment: str) -> None:
    assert_health(manifest, status, reason, fragment)


# --- StatefulSet -------------------------------------------------------------------------------

STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: shop
  uid: 1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f
  resourceVersion: "201877"
  generation: 2
  creationTimestamp: "2025-03-01T08:00:00Z"
spec:
  replicas: {replicas}
  serviceName: db
  podManagementPolicy: OrderedReady
  selector:
    matchLabels: {{app: db}}
  updateStrategy: {strategy}
status:
  observedGeneration: 2
  replicas: {replicas}
  readyReplicas: {ready}
  availableReplicas: {ready}
  currentReplicas: {current}
  updatedReplicas: {updated}
  currentRevision: db-6c9b7f5d48
  updateRevision: {update_revision}
  collisionCount: 0
"""

ROLLING = "{type: RollingUpdate, rollingUpdate: {partition: 0}}"


def statefulset(
    *,
    strategy: str = ROLLING,
    replicas: int = 3,
    ready: int = 3,
    current: int = 3,
    updated: int = 3,
    update_revision: str = "db-6c9b7f5d48",
) -> str:
    """A StatefulSet as the API server returns it, with the rollout counts filled in."""
    return STATEFULSET.format(
        strategy=strategy,
        replicas=replicas,
        ready=ready,
        current=current,
        updated=updated,
        update_revision=update_revision,
    )


STATEFULSET_CASES = [
    pytest.param(
        statefulset(), Status.CURRENT, "", "ready at revision db-6c9b7f5d48", id="current"
    ),
    pytest.param(
        statefulset(ready=2, current=2, updated=0, update_revision="db-7f4d8c9b21"),
        Status.IN_PROGRESS,
        "",
        "2 of 3 replicas are ready",
        id="pod-being-replaced",
    ),
    pytest.param(
        statefulset(current=2, updated=1, update_revision="db-7f4d8c9b21"),
        Status.IN_PROGRESS,
        "",
        "1/3 replicas updated",
        id="rolling-update",
    ),
    pytest.param(
        statefulset(
            strategy="{type: RollingUpdate, rollingUpdate: {partition: 3}}",
            replicas=5,
            ready=5,
            current=4,
            updated=1,
            update_revision="db-7f4d8c9b21",
        ),
        Status.IN_PROGRESS,
        "",
        "1/2 replicas updated (partition 3)",
        id="partitioned-rollout-in-progress",
    ),
    pytest.param(
        statefulset(
            strategy="{type: RollingUpdate, rollingUpdate: {partition: 3}}",
            replicas=5,
            ready=5,
            current=3,
            updated=2,
            update_revision="db-7f4d8c9b21",
        ),
        Status.CURRENT,
        "",
        "partitioned rollout complete: 2/2 replicas updated",
        id="partitioned-rollout-complete",
    ),
    pytest.param(
        statefulset(strategy="{type: OnDelete}", updated=0, update_revision="db-7f4d8c9b21"),
        Status.CURRENT,
        "",
        "OnDelete",
        id="on-delete-strategy",
    ),
]


@pytest.mark.parametrize(CASES, STATEFULSET_CASES)
def test_statefulset(manifest: str, status: Status, reason: str, fragment: str) -> None:
    assert_health(manifest, status, reason, fragment)


def test_statefulset_scaling_up_waits_for_replicas() -> None:
    obj = load(statefulset(replicas=3, ready=2, current=2, updated=2))
    obj["status"]["replicas"] = 2
    health = evaluate(obj)
    assert health.status is Status.IN_PROGRESS
    assert health.message == "StatefulSet db: 2/3 replicas created"


# --- DaemonSet ---------------------------------------------------------------------------------

DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-exporter
  namespace: monitoring
  resourceVersion: "88120"
  generation: 5
spec:
  selector:
    matchLabels: {{app: node-exporter}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: 0, maxUnavailable: 1}}
status:
  observedGeneration: 5
  desiredNumberScheduled: 3
  currentNumberScheduled: 3
  updatedNumberScheduled: {updated}
  numberAvailable: {available}
  numberReady: {ready}
  numberUnavailable: {unavailable}
  numberMisscheduled: 0
"""


def daemonset(*, updated: int = 3, available: int = 3, ready: int = 3) -> str:
    """A DaemonSet on three nodes with the rollout counts filled in."""
    return DAEMONSET.format(
        updated=updated, available=available, ready=ready, unavailable=3 - available
    )


DAEMONSET_CASES = [
    pytest.param(daemonset(), Status.CURRENT, "", "3 pods updated and ready", id="current"),
    pytest.param(
        daemonset(updated=1, available=2, ready=2),
        Status.IN_PROGRESS,
        "",
        "1/3 pods updated",
        id="mid-rollout",
    ),
    pytest.param(
        daemonset(available=2, ready=2),
        Status.IN_PROGRESS,
        "",
        "2 of 3 pods are available",
        id="last-pod-not-available",
    ),
    pytest.param(
        """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-exporter, namespace: monitoring, generation: 1, resourceVersion: "88001"}
spec: {selector: {matchLabels: {app: node-exporter}}}
status:
  currentNumberScheduled: 0
  desiredNumberScheduled: 0
  numberMisscheduled: 0
  numberReady: 0
""",
        Status.IN_PROGRESS,
        "",
        "not yet observed by the DaemonSet controller",
        id="not-yet-observed",
    ),
]


@pytest.mark.parametrize(CASES, DAEMONSET_CASES)
def test_daemonset(manifest: str, status: Status, reason: str, fragment: str) -> None:
    assert_health(manifest, status, reason, fragment)


# --- ReplicaSet --------------------------------------------------------------------------------

REPLICASET = """
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-7d9f8b6c5d
  namespace: shop
  generation: 1
  resourceVersion: "184460"
  ownerReferences:
  - {{apiVersion: apps/v1, kind: Deployment, name: web, controller: true,
     blockOwnerDeletion: true, uid: 5b0e3c1a-8f0e-4c2b-9a57-2f1d7c3e9b10}}
spec:
  replicas: 3
  minReadySeconds: 30
  selector:
    matchLabels: {{app: web, pod-template-hash: 7d9f8b6c5d}}
status:
  observedGeneration: 1
  replicas: {replicas}
  fullyLabeledReplicas: {replicas}
  readyReplicas: {ready}
  availableReplicas: {available}
{conditions}
"""

QUOTA_FAILURE = """\
  conditions:
  - type: ReplicaFailure
    status: "True"
    reason: FailedCreate
    message: 'pods "web-7d9f8b6c5d-x2k4p" is forbidden: exceeded quota: compute-quota,
      requested: limits.cpu=500m, used: limits.cpu=2, limited: limits.cpu=2'
    lastTransitionTime: "2025-03-02T09:12:45Z"
"""

REPLICASET_CASES = [
    pytest.param(
        REPLICASET.format(replicas=3, ready=3, available=3, conditions=""),
        Status.CURRENT,
        "",
        "3 replicas available",
        id="current",
    ),
    pytest.param(
        REPLICASET.format(replicas=3, ready=3, available=1, conditions=""),
        Status.IN_PROGRESS,
        "",
        "1 of 3 replicas are available",
        id="waiting-for-min-ready-seconds",
    ),
    pytest.param(
        REPLICASET.format(replicas=2, ready=2, available=2, conditions=QUOTA_FAILURE),
        Status.IN_PROGRESS,
        "",
        'cannot create pods: FailedCreate: pods "web-7d9f8b6c5d-x2k4p" is forbidden: exceeded',
        id="replica-failure-quota",
    ),
]


@pytest.mark.parametrize(CASES, REPLICASET_CASES)
def test_replicaset(manifest: str, status: Status, reason: str, fragment: str) -> None:
    assert_health(manifest, status, reason, fragment)


# --- Job ---------------------------------------------------------------------------------------

JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: shop
  generation: 1
  resourceVersion: "185012"
  labels: {{batch.kubernetes.io/job-name: migrate}}
spec:
  backoffLimit: 2
  completions: 1
  parallelism: 1
  completionMode: NonIndexed
  suspend: {suspend}
  template:
    spec:
      restartPolicy: Never
      containers:
      - {{name: migrate, image: registry.example.com/shop/migrate:1.4.2}}
status:
{status}
"""

JOB_COMPLETE = """\
  startTime: "2025-03-02T09:12:44Z"
  completionTime: "2025-03-02T09:13:20Z"
  succeeded: 1
  ready: 0
  terminating: 0
  uncountedTerminatedPods: {}
  conditions:
  - type: SuccessCriteriaMet
    status: "True"
    reason: CompletionsReached
    message: Reached expected number of succeeded pods
    lastProbeTime: "2025-03-02T09:13:20Z"
    lastTransitionTime: "2025-03-02T09:13:20Z"
  - type: Complete
    status: "True"
    reason: CompletionsReached
    message: Reached expected number of succeeded pods
    lastProbeTime: "2025-03-02T09:13:20Z"
    lastTransitionTime: "2025-03-02T09:13:20Z"
"""

JOB_BACKOFF_LIMIT = """\
  startTime: "2025-03-02T09:12:44Z"
  failed: 3
  ready: 0
  terminating: 0
  uncountedTerminatedPods: {}
  conditions:
  - type: FailureTarget
    status: "True"
    reason: BackoffLimitExceeded
    message: Job has reached the specified backoff limit
    lastProbeTime: "2025-03-02T09:14:02Z"
    lastTransitionTime: "2025-03-02T09:14:02Z"
  - type: Failed
    status: "True"
    reason: BackoffLimitExceeded
    message: Job has reached the specified backoff limit
    lastProbeTime: "2025-03-02T09:14:02Z"
    lastTransitionTime: "2025-03-02T09:14:02Z"
"""

JOB_RUNNING = """\
  startTime: "2025-03-02T09:12:44Z"
  active: 1
  failed: 1
  ready: 1
  terminating: 0
  uncountedTerminatedPods: {}
"""

JOB_SUSPENDED = """\
  conditions:
  - type: Suspended
    status: "True"
    reason: JobSuspended
    message: Job suspended
    lastProbeTime: "2025-03-02T09:12:44Z"
    lastTransitionTime: "2025-03-02T09:12:44Z"
"""

JOB_CASES = [
    pytest.param(
        JOB.format(suspend="false", status=JOB_COMPLETE),
        Status.CURRENT,
        "",
        "completed, 1/1 succeeded",
        id="complete",
    ),
    pytest.param(
        JOB.format(suspend="false", status=JOB_BACKOFF_LIMIT),
        Status.FAILED,
        "JobFailed",
        "failed with BackoffLimitExceeded: Job has reached the specified backoff limit",
        id="backoff-limit-exceeded",
    ),
    pytest.param(
        JOB.format(suspend="false", status=JOB_RUNNING),
        Status.IN_PROGRESS,
        "",
        "running: 0/1 succeeded, 1 active, 1 failed",
        id="running-after-one-failure",
    ),
    pytest.param(
        JOB.format(suspend="true", status=JOB_SUSPENDED),
        Status.IN_PROGRESS,
        "",
        "is suspended",
        id="suspended",
    ),
    pytest.param(
        JOB.format(suspend="false", status="  {}"),
        Status.IN_PROGRESS,
        "",
        "not started yet",
        id="not-started",
    ),
]


@pytest.mark.parametrize(CASES, JOB_CASES)
def test_job(manifest: str, status: Status, reason: str, fragment: str) -> None:
    assert_health(manifest, status, reason, fragment)


# --- Pod ---------------------------------------------------------------------------------------

POD_RUNNING_READY = """
apiVersion: v1
kind: Pod
metadata:
  name: web-7d9f8b6c5d-x2k4p
  generateName: web-7d9f8b6c5d-
  namespace: shop
  uid: 0f5c6a2e-3b1d-4e8f-9a7c-6d5e4f3a2b1c
  resourceVersion: "184455"
  labels: {app: web, pod-template-hash: 7d9f8b6c5d}
spec:
  nodeName: worker-1
  restartPolicy: Always
  containers:
  - {name: app, image: registry.example.com/shop/web:1.4.2}
status:
  phase: Running
  hostIP: 172.18.0.3
  podIP: 10.244.1.17
  qosClass: Burstable
  startTime: "2025-03-02T09:12:45Z"
  conditions:
  - {type: PodReadyToStartContainers, status: "True", lastTransitionTime: "2025-03-02T09:12:47Z"}
  - {type: Initialized, status: "True", lastTransitionTime: "2025-03-02T09:12:45Z"}
  - {type: Ready, status: "True", lastTransitionTime: "2025-03-02T09:12:58Z"}
  - {type: ContainersReady, status: "True", lastTransitionTime: "2025-03-02T09:12:58Z"}
  - {type: PodScheduled, status: "True", lastTransitionTime: "2025-03-02T09:12:45Z"}
  containerStatuses:
  - name: app
    image: registry.example.com/shop/web:1.4.2
    imageID: registry.example.com/shop/web@sha256:9b1f0c4e7d2a
    containerID: containerd://4c1e2f3a5b6d
    ready: true
    started: true
    restartCount: 0
    state:
      running: {startedAt: "2025-03-02T09:12:47Z"}
    lastState: {}
"""

NOT_READY = """\
  - type: Ready
    status: "False"
    reason: ContainersNotReady
    message: 'containers with unready status: [app]'
    lastTransitionTime: "2025-03-02T11:02:17Z"
"""

POD_CRASHLOOP = f"""
apiVersion: v1
kind: Pod
metadata:
  name: web-5c4b7d9f86-q8zlm
  namespace: shop
  resourceVersion: "190455"
  labels: {{app: web, pod-template-hash: 5c4b7d9f86}}
spec:
  nodeName: worker-2
  restartPolicy: Always
  containers:
  - {{name: app, image: registry.example.com/shop/web:1.4.3}}
status:
  phase: Running
  startTime: "2025-03-02T11:02:17Z"
  conditions:
{NOT_READY}
  containerStatuses:
  - name: app
    image: registry.example.com/shop/web:1.4.3
    imageID: registry.example.com/shop/web@sha256:77aa01b2c3d4
    containerID: containerd://8e7d6c5b4a39
    ready: false
    started: false
    restartCount: 5
    state:
      waiting:
        reason: CrashLoopBackOff
        message: back-off 2m40s restarting failed container=app
          pod=web-5c4b7d9f86-q8zlm_shop(3e2d1c0b-a987-4654-b321-0fedcba98765)
    lastState:
      terminated:
        exitCode: 1
        reason: Error
        startedAt: "2025-03-02T11:06:01Z"
        finishedAt: "2025-03-02T11:06:02Z"
        containerID: containerd://8e7d6c5b4a39
"""

POD_PULL = """
apiVersion: v1
kind: Pod
metadata:
  name: web-5c4b7d9f86-r2n7d
  namespace: shop
  resourceVersion: "190470"
spec:
  nodeName: worker-3
  containers:
  - {{name: app, image: "registry.example.com/shop/web:1.4.3"}}
status:
  phase: Pending
  startTime: "2025-03-02T11:02:17Z"
  conditions:
  - {{type: PodScheduled, status: "True", lastTransitionTime: "2025-03-02T11:02:17Z"}}
  containerStatuses:
  - name: app
    image: registry.example.com/shop/web:1.4.3
    imageID: ""
    ready: false
    started: false
    restartCount: 0
    state:
      waiting:
        reason: {reason}
        message: '{message}'
    lastState: {{}}
"""

POD_IMAGE_PULL_BACKOFF = POD_PULL.format(
    reason="ImagePullBackOff",
    message='Back-off pulling image "registry.example.com/shop/web:1.4.3"',
)

POD_ERR_IMAGE_PULL = POD_PULL.format(
    reason="ErrImagePull",
    message='failed to pull and unpack image "registry.example.com/shop/web:1.4.3": '
    "registry.example.com/shop/web:1.4.3: not found",
)

POD_FAILED_ERROR = """
apiVersion: v1
kind: Pod
metadata:
  name: migrate-8kq2v
  namespace: shop
  resourceVersion: "185002"
  labels: {batch.kubernetes.io/job-name: migrate}
spec:
  nodeName: worker-1
  restartPolicy: Never
  containers:
  - {name: migrate, image: registry.example.com/shop/migrate:1.4.2}
status:
  phase: Failed
  startTime: "2025-03-02T09:12:45Z"
  conditions:
  - {type: Ready, status: "False", reason: PodFailed, lastTransitionTime: "2025-03-02T09:12:52Z"}
  containerStatuses:
  - name: migrate
    image: registry.example.com/shop/migrate:1.4.2
    ready: false
    started: false
    restartCount: 0
    state:
      terminated:
        exitCode: 1
        reason: Error
        message: 'relation "orders" already exists'
        startedAt: "2025-03-02T09:12:47Z"
        finishedAt: "2025-03-02T09:12:51Z"
    lastState: {}
"""

POD_INIT_CRASHLOOP = """
apiVersion: v1
kind: Pod
metadata:
  name: api-6b7c8d9e0f-hj3kl
  namespace: shop
  resourceVersion: "190901"
spec:
  nodeName: worker-2
  initContainers:
  - {name: wait-for-db, image: registry.example.com/tools/wait-for:2.0}
  containers:
  - {name: api, image: registry.example.com/shop/api:2.1.0}
status:
  phase: Pending
  conditions:
  - type: Initialized
    status: "False"
    reason: ContainersNotInitialized
    message: 'containers with incomplete status: [wait-for-db]'
    lastTransitionTime: "2025-03-02T11:10:00Z"
  initContainerStatuses:
  - name: wait-for-db
    image: registry.example.com/tools/wait-for:2.0
    ready: false
    started: false
    restartCount: 3
    state:
      waiting:
        reason: CrashLoopBackOff
        message: back-off 40s restarting failed container=wait-for-db
          pod=api-6b7c8d9e0f-hj3kl_shop(9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d)
    lastState:
      terminated:
        exitCode: 2
        reason: Error
        startedAt: "2025-03-02T11:11:02Z"
        finishedAt: "2025-03-02T11:11:12Z"
  containerStatuses:
  - name: api
    image: registry.example.com/shop/api:2.1.0
    ready: false
    started: false
    restartCount: 0
    state:
      waiting: {reason: PodInitializing}
    lastState: {}
"""

POD_CASES = [
    pytest.param(POD_RUNNING_READY, Status.CURRENT, "", "running and ready", id="running-ready"),
    pytest.param(
        POD_FAILED_ERROR.replace("phase: Failed", "phase: Succeeded")
        .replace("exitCode: 1", "exitCode: 0")
        .replace("reason: Error", "reason: Completed"),
        Status.CURRENT,
        "",
        "completed successfully",
        id="succeeded",
    ),
    pytest.param(
        POD_CRASHLOOP,
        Status.FAILED,
        "CrashLoopBackOff",
        "container app is in CrashLoopBackOff (exit code 1, 5 restarts): back-off 2m40s",
        id="crash-loop",
    ),
    pytest.param(
        POD_INIT_CRASHLOOP,
        Status.FAILED,
        "CrashLoopBackOff",
        "container wait-for-db is in CrashLoopBackOff (exit code 2, 3 restarts)",
        id="init-container-crash-loop",
    ),
    pytest.param(
        POD_IMAGE_PULL_BACKOFF,
        Status.FAILED,
        "ImagePullBackOff",
        'container app is in ImagePullBackOff: Back-off pulling image "registry.example.com/',
        id="image-pull-backoff",
    ),
    pytest.param(
        POD_ERR_IMAGE_PULL,
        Status.FAILED,
        "ErrImagePull",
        "container app is in ErrImagePull: failed to pull and unpack image",
        id="err-image-pull",
    ),
    pytest.param(
        POD_PULL.format(reason="CreateContainerConfigError", message='secret "web-env" not found'),
        Status.FAILED,
        "CreateContainerConfigError",
        'secret "web-env" not found',
        id="missing-secret",
    ),
    pytest.param(
        POD_FAILED_ERROR,
        Status.FAILED,
        "Error",
        'container migrate is in Error (exit code 1): relation "orders" already exists',
        id="failed-exit-code-1",
    ),
    pytest.param(
        POD_FAILED_ERROR.replace(
            "  phase: Failed\n",
            "  phase: Failed\n  reason: Evicted\n"
            "  message: 'The node was low on resource: memory. Threshold quantity: 100Mi.'\n",
        ),
        Status.FAILED,
        "Evicted",
        "failed with Evicted: The node was low on resource: memory.",
        id="evicted",
    ),
    pytest.param(
        """
apiVersion: v1
kind: Pod
metadata: {name: web-5c4b7d9f86-tt9wq, namespace: shop, resourceVersion: "190480"}
spec:
  containers:
  - {name: app, image: registry.example.com/shop/web:1.4.3}
status:
  phase: Pending
  qosClass: Burstable
  conditions:
  - type: PodScheduled
    status: "False"
    reason: Unschedulable
    message: '0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are
      available: 3 No preemption victims found for incoming pod.'
    lastProbeTime: null
    lastTransitionTime: "2025-03-02T11:02:17Z"
""",
        Status.IN_PROGRESS,
        "",
        "not scheduled: Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.",
        id="unschedulable",
    ),
    pytest.param(
        POD_RUNNING_READY.replace(
            '  - {type: Ready, status: "True", lastTransitionTime: "2025-03-02T09:12:58Z"}\n',
            NOT_READY,
        ),
        Status.IN_PROGRESS,
        "",
        "running but not ready: ContainersNotReady: containers with unready status: [app]",
        id="readiness-probe-failing",
    ),
    pytest.param(
        POD_RUNNING_READY.replace(
            '  resourceVersion: "184455"\n',
            '  resourceVersion: "184455"\n  deletionTimestamp: "2025-03-02T12:00:30Z"\n'
            "  deletionGracePeriodSeconds: 30\n",
        ),
        Status.TERMINATING,
        "",
        "is being deleted",
        id="terminating",
    ),
]


@pytest.mark.parametrize(CASES, POD_CASES)
def test_pod(manifest: str, status: Status, reason: str, fragment: str) -> None:
    assert_health(manifest, status, reason, fragment)


# --- PersistentVolumeClaim, Service ------------------------------------------------------------

PVC = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data-db-0
  namespace: shop
  resourceVersion: "201500"
  finalizers: [kubernetes.io/pvc-protection]
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 10Gi}}}}
  storageClassName: standard
  volumeMode: Filesystem
{volume}status:
  phase: {phase}
"""

SERVICE = """
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop, resourceVersion: "184401"}}
spec:
  type: {type}
  clusterIP: 10.96.140.12
  clusterIPs: [10.96.140.12]
  ports:
  - {{name: http, port: 80, protocol: TCP, targetPort: 8080}}
  selector: {{app: web}}
status:
  loadBalancer: {load_balancer}
"""

CORE_CASES = [
    pytest.param(
        PVC.format(volume="  volumeName: pvc-3f6a2b1c\n", phase="Bound"),
        Status.CURRENT,
        "",
        "bound to pvc-3f6a2b1c",
        id="pvc-bound",
    ),
    pytest.param(
        PVC.format(volume="", phase="Pending"),
        Status.IN_PROGRESS,
        "",
        "phase Pending, waiting to be bound",
        id="pvc-pending",
    ),
    pytest.param(
        PVC.format(volume="  volumeName: pvc-3f6a2b1c\n", phase="Lost"),
        Status.FAILED,
        "ClaimLost",
        "lost pvc-3f6a2b1c",
        id="pvc-lost",
    ),
    pytest.param(
        SERVICE.format(type="ClusterIP", load_balancer="{}"),
        Status.CURRENT,
        "",
        "ClusterIP service needs no rollout",
        id="service-cluster-ip",
    ),
    pytest.param(
        SERVICE.format(type="LoadBalancer", load_balancer="{}"),
        Status.IN_PROGRESS,
        "",
        "waiting for the load balancer to get an address",
        id="service-load-balancer-pending",
    ),
    pytest.param(
        SERVICE.format(
            type="LoadBalancer", load_balancer="{ingress: [{ip: 203.0.113.10, ipMode: VIP}]}"
        ),
        Status.CURRENT,
        "",
        "load balancer ready at 203.0.113.10",
        id="service-load-balancer-ready",
    ),
]


@pytest.mark.parametrize(CASES, CORE_CASES)
def test_core_kinds(manifest: str, status: Status, reason: str, fragment: str) -> None:
    assert_health(manifest, status, reason, fragment)


# --- CustomResourceDefinition ------------------------------------------------------------------

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
  generation: 1
  resourceVersion: "5120"
spec:
  group: example.com
  scope: Namespaced
  names: {{kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}}
  versions:
  - {{name: v1, served: true, storage: true, schema: {{openAPIV3Schema: {{type: object}}}}}}
status:
  acceptedNames: {accepted}
  storedVersions: [v1]
  conditions:
  - type: NamesAccepted
    status: "{names_status}"
    reason: {names_reason}
    message: '{names_message}'
    lastTransitionTime: "2025-03-01T08:00:00Z"
  - type: Established
    status: "{established_status}"
    reason: {established_reason}
    message: {established_message}
    lastTransitionTime: "2025-03-01T08:00:00Z"
"""

ACCEPTED = "{kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}"

CRD_CASES = [
    pytest.param(
        CRD.format(
            accepted=ACCEPTED,
            names_status="True",
            names_reason="NoConflicts",
            names_message="no conflicts found",
            established_status="True",
            established_reason="InitialNamesAccepted",
            established_message="the initial names have been accepted",
        ),
        Status.CURRENT,
        "",
        "established",
        id="established",
    ),
    pytest.param(
        CRD.format(
            accepted=ACCEPTED,
            names_status="True",
            names_reason="NoConflicts",
            names_message="no conflicts found",
            established_status="False",
            established_reason="Installing",
            established_message="the initial names have been accepted",
        ),
        Status.IN_PROGRESS,
        "",
        "not established yet",
        id="installing",
    ),
    pytest.param(
        CRD.format(
            accepted="{kind: '', plural: ''}",
            names_status="False",
            names_reason="PluralConflict",
            names_message='"widgets" is already in use',
            established_status="False",
            established_reason="NotAccepted",
            established_message="not all names are accepted",
        ),
        Status.FAILED,
        "PluralConflict",
        'names not accepted: "widgets" is already in use',
        id="names-not-accepted",
    ),
]


@pytest.mark.parametrize(CASES, CRD_CASES)
def test_custom_resource_definition(
    manifest: str, status: Status, reason: str, fragment: str
) -> None:
    assert_health(manifest, status, reason, fragment)


# --- Generic resources -------------------------------------------------------------------------

CERTIFICATE = """
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {{name: shop-tls, namespace: shop, generation: 1, resourceVersion: "77310"}}
spec:
  secretName: shop-tls
  dnsNames: [shop.example.com]
  issuerRef: {{kind: ClusterIssuer, name: letsencrypt}}
status:
  conditions:
  - type: Ready
    status: "{ready}"
    reason: {reason}
    message: {message}
    observedGeneration: 1
    lastTransitionTime: "2025-03-02T09:12:44Z"
"""

KUSTOMIZATION = """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system, generation: 2, resourceVersion: "99120"}
spec: {interval: 10m, path: ./apps, prune: true, sourceRef: {kind: GitRepository, name: fleet}}
status:
  observedGeneration: 2
  conditions:
  - type: Ready
    status: "False"
    reason: BuildFailed
    message: 'kustomize build failed: accumulating resources: ./apps/shop: no such file'
    observedGeneration: 2
    lastTransitionTime: "2025-03-02T09:20:00Z"
  - type: Stalled
    status: "True"
    reason: BuildFailed
    message: 'kustomize build failed: accumulating resources: ./apps/shop: no such file'
    observedGeneration: 2
    lastTransitionTime: "2025-03-02T09:20:00Z"
"""

HELMRELEASE_UPGRADING = """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: redis, namespace: shop, generation: 3, resourceVersion: "99500"}
spec: {interval: 10m, chart: {spec: {chart: redis, sourceRef: {kind: HelmRepository, name: x}}}}
status:
  observedGeneration: 3
  conditions:
  - type: Reconciling
    status: "True"
    reason: ProgressingWithRetry
    message: Running 'upgrade' action with timeout of 5m0s
    observedGeneration: 3
    lastTransitionTime: "2025-03-02T09:30:00Z"
  - type: Ready
    status: Unknown
    reason: Progressing
    message: Running 'upgrade' action with timeout of 5m0s
    observedGeneration: 3
    lastTransitionTime: "2025-03-02T09:30:00Z"
"""

GENERIC_CASES = [
    pytest.param(
        CERTIFICATE.format(
            ready="False",
            reason="DoesNotExist",
            message="Issuing certificate as Secret does not exist",
        ),
        Status.IN_PROGRESS,
        "",
        "not ready: DoesNotExist: Issuing certificate as Secret does not exist",
        id="ready-false",
    ),
    pytest.param(
        CERTIFICATE.format(
            ready="True", reason="Ready", message="Certificate is up to date and has not expired"
        ),
        Status.CURRENT,
        "",
        "ready",
        id="ready-true",
    ),
    pytest.param(
        """
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello, namespace: shop, generation: 1, resourceVersion: "61002"}
spec:
  template:
    spec:
      containers:
      - {image: registry.example.com/shop/hello:1.0}
status:
  observedGeneration: 1
  conditions:
  - type: ConfigurationsReady
    status: Unknown
    reason: RevisionMissing
    message: Configuration "hello" is waiting for a Revision to become ready.
    lastTransitionTime: "2025-03-02T09:40:00Z"
  - type: Ready
    status: Unknown
    reason: RevisionMissing
    message: Configuration "hello" is waiting for a Revision to become ready.
    lastTransitionTime: "2025-03-02T09:40:00Z"
""",
        Status.IN_PROGRESS,
        "",
        'not ready: RevisionMissing: Configuration "hello" is waiting for a Revision',
        id="ready-unknown-knative-service",
    ),
    pytest.param(
        KUSTOMIZATION,
        Status.FAILED,
        "Stalled",
        "stalled: BuildFailed: kustomize build failed",
        id="stalled",
    ),
    pytest.param(
        HELMRELEASE_UPGRADING,
        Status.IN_PROGRESS,
        "",
        "reconciling: ProgressingWithRetry: Running 'upgrade' action",
        id="reconciling",
    ),
    pytest.param(
        KUSTOMIZATION.replace("generation: 2,", "generation: 3,"),
        Status.IN_PROGRESS,
        "",
        "generation 3 not yet observed (status is 2)",
        id="stale-stalled-from-previous-generation",
    ),
    pytest.param(
        """
apiVersion: example.com/v1
kind: Widget
metadata: {name: blue, namespace: shop, generation: 1, resourceVersion: "5301"}
spec: {size: 3}
""",
        Status.CURRENT,
        "",
        "has no status to wait for",
        id="no-status",
    ),
    pytest.param(
        """
apiVersion: example.com/v1
kind: Widget
metadata: {name: green, namespace: shop, generation: 2, resourceVersion: "5333"}
spec: {size: 3}
status: {observedGeneration: 2, phase: Active}
""",
        Status.CURRENT,
        "",
        "reports no condition to wait for",
        id="status-without-conditions",
    ),
    pytest.param(
        """
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: shop, resourceVersion: "184400"}
data: {LOG_LEVEL: info}
""",
        Status.CURRENT,
        "",
        "has no status to wait for",
        id="configmap",
    ),
    pytest.param(
        """
apiVersion: example.com/v1
kind: Widget
metadata:
  name: blue
  namespace: shop
  generation: 2
  resourceVersion: "5390"
  deletionTimestamp: "2025-03-02T12:00:00Z"
  deletionGracePeriodSeconds: 0
  finalizers: [example.com/cleanup]
spec: {size: 3}
""",
        Status.TERMINATING,
        "",
        "is being deleted",
        id="terminating-with-finalizer",
    ),
]


@pytest.mark.parametrize(CASES, GENERIC_CASES)
def test_generic_resource(manifest: str, status: Status, reason: str, fragment: str) -> None:
    assert_health(manifest, status, reason, fragment)


def test_missing_object_is_not_found() -> None:
    health = evaluate(None)
    assert health.status is Status.NOT_FOUND
    assert health.reason == ""


@pytest.mark.parametrize(
    "status_field",
    [
        pytest.param("oops", id="status-is-a-string"),
        pytest.param({"replicas": "3", "conditions": "none"}, id="fields-of-wrong-type"),
        pytest.param({"conditions": [None, 7, {"type": "Available", "status": True}]}, id="junk"),
    ],
)
def test_malformed_status_reads_as_not_rolled_out(status_field: object) -> None:
    obj = load(DEPLOYMENT_ROLLED_OUT)
    obj["status"] = status_field
    health = evaluate(obj)
    assert health.status is Status.IN_PROGRESS
    assert health.message == "Deployment web: 0/3 replicas updated"


# --- pod_problems and friends ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        pytest.param(
            POD_CRASHLOOP,
            [
                PodProblem(
                    pod="web-5c4b7d9f86-q8zlm",
                    container="app",
                    reason="CrashLoopBackOff",
                    message="back-off 2m40s restarting failed container=app "
                    "pod=web-5c4b7d9f86-q8zlm_shop(3e2d1c0b-a987-4654-b321-0fedcba98765)",
                    exit_code=1,
                    restart_count=5,
                )
            ],
            id="crash-loop",
        ),
        pytest.param(
            POD_ERR_IMAGE_PULL,
            [
                PodProblem(
                    pod="web-5c4b7d9f86-r2n7d",
                    container="app",
                    reason="ErrImagePull",
                    message='failed to pull and unpack image "registry.example.com/shop/web:1.4.3"'
                    ": registry.example.com/shop/web:1.4.3: not found",
                    exit_code=None,
                    restart_count=0,
                )
            ],
            id="err-image-pull-never-ran",
        ),
        pytest.param(
            POD_FAILED_ERROR,
            [
                PodProblem(
                    pod="migrate-8kq2v",
                    container="migrate",
                    reason="Error",
                    message='relation "orders" already exists',
                    exit_code=1,
                    restart_count=0,
                )
            ],
            id="failed-pod-terminated-container",
        ),
        pytest.param(
            # The same nonzero exit on a pod that has not failed yet: the kubelet may retry.
            POD_FAILED_ERROR.replace("phase: Failed", "phase: Running"),
            [],
            id="nonzero-exit-on-running-pod",
        ),
        pytest.param(POD_RUNNING_READY, [], id="healthy"),
        pytest.param(
            # The app container waits in PodInitializing behind the init container: not a problem.
            POD_INIT_CRASHLOOP,
            [
                PodProblem(
                    pod="api-6b7c8d9e0f-hj3kl",
                    container="wait-for-db",
                    reason="CrashLoopBackOff",
                    message="back-off 40s restarting failed container=wait-for-db "
                    "pod=api-6b7c8d9e0f-hj3kl_shop(9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d)",
                    exit_code=2,
                    restart_count=3,
                )
            ],
            id="init-container-only",
        ),
    ],
)
def test_pod_problems(manifest: str, expected: list[PodProblem]) -> None:
    assert pod_problems(load(manifest)) == expected


@pytest.mark.parametrize(
    ("problem", "sentence"),
    [
        pytest.param(
            PodProblem(
                "web-7d9f-abcde",
                "app",
                "CrashLoopBackOff",
                "back-off 40s restarting failed container",
                1,
                5,
            ),
            "pod web-7d9f-abcde container app is in CrashLoopBackOff (exit code 1, 5 restarts): "
            "back-off 40s restarting failed container",
            id="full",
        ),
        pytest.param(
            PodProblem("web-7d9f-abcde", "app", "OOMKilled", "", 137, 1),
            "pod web-7d9f-abcde container app is in OOMKilled (exit code 137, 1 restart)",
            id="no-message-one-restart",
        ),
        pytest.param(
            PodProblem("web-7d9f-abcde", "app", "InvalidImageName", "bad ref", None, 0),
            "pod web-7d9f-abcde container app is in InvalidImageName: bad ref",
            id="never-ran",
        ),
    ],
)
def test_pod_problem_sentence(problem: PodProblem, sentence: str) -> None:
    assert problem.sentence() == sentence


def test_failing_waiting_reasons_exclude_normal_startup() -> None:
    assert {"ContainerCreating", "PodInitializing"}.isdisjoint(FAILING_WAITING_REASONS)
    assert "CrashLoopBackOff" in FAILING_WAITING_REASONS


@pytest.mark.parametrize(
    ("manifest", "restarts"),
    [
        pytest.param(POD_RUNNING_READY, 0, id="none"),
        pytest.param(POD_CRASHLOOP, 5, id="app-container"),
        pytest.param(POD_INIT_CRASHLOOP, 3, id="init-container-counts"),
    ],
)
def test_pod_restart_total(manifest: str, restarts: int) -> None:
    assert pod_restart_total(load(manifest)) == restarts


def test_pod_restart_total_sums_every_container() -> None:
    pod = load(POD_INIT_CRASHLOOP)
    pod["status"]["containerStatuses"][0]["restartCount"] = 4
    assert pod_restart_total(pod) == 7


@pytest.mark.parametrize(
    ("manifest", "ready"),
    [
        pytest.param(POD_RUNNING_READY, True, id="ready"),
        pytest.param(POD_CRASHLOOP, False, id="ready-false"),
        pytest.param(POD_IMAGE_PULL_BACKOFF, False, id="no-ready-condition"),
    ],
)
def test_pod_is_ready(manifest: str, ready: bool) -> None:
    assert pod_is_ready(load(manifest)) is ready
