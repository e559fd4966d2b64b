"""Which pods belong to the newest revision, and what they say about restarts and failures."""

from typing import Any

import pytest
import yaml

from deploybell.clients.errors import ApiError, Forbidden, Unreachable
from deploybell.deploy.manifests import ObjectRef
from deploybell.deploy.observe import Observation, Observer, current_pods, summarize_pods

REVISION = "deployment.kubernetes.io/revision"


def load(manifest: str) -> dict[str, Any]:
    obj = yaml.safe_load(manifest)
    assert isinstance(obj, dict)
    return obj


def owner(api_version: str, kind: str, name: str, controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": f"uid-{kind.lower()}-{name}",
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def pod(
    name: str,
    owned_by: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    terminating: bool = False,
    namespace: str = "shop",
) -> dict[str, Any]:
    """A running, ready pod as the watch delivers it."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-pod-{name}",
        "resourceVersion": "190470",
        "labels": {"app": "web", "deploybell.io/job": "web", **(labels or {})},
    }
    if owned_by:
        meta["ownerReferences"] = [owned_by]
    if terminating:
        meta["deletionTimestamp"] = "2025-03-02T11:06:30Z"
        meta["deletionGracePeriodSeconds"] = 30
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": "worker-1", "containers": [{"name": "app", "image": "web:1.4.3"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "ready": True, "restartCount": 0, "state": {"running": {}}}
            ],
        },
    }


# --- Deployment --------------------------------------------------------------------------------

DEPLOYMENT = load("""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  uid: uid-deployment-web
  generation: 3
  annotations: {deployment.kubernetes.io/revision: "3"}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
status: {observedGeneration: 3, replicas: 3, updatedReplicas: 1}
""")


def replicaset(name: str, revision: str, deployment: str | None = "web") -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "uid": f"uid-replicaset-{name}",
        "generation": 1,
        "labels": {"app": "web", "pod-template-hash": name.rsplit("-", 1)[1]},
        "annotations": {
            REVISION: revision,
            "deployment.kubernetes.io/desired-replicas": "2",
            "deployment.kubernetes.io/max-replicas": "3",
        },
    }
    if deployment:
        meta["ownerReferences"] = [owner("apps/v1", "Deployment", deployment)]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta,
        "spec": {"replicas": 1},
        "status": {"replicas": 1, "observedGeneration": 1},
    }


NEW_RS = replicaset("web-7d9f8b6c5d", "3")
OLD_RS = replicaset("web-5c4b7d9f86", "2")
NEW_POD = pod("web-7d9f8b6c5d-x2kqp", owner("apps/v1", "ReplicaSet", "web-7d9f8b6c5d"))
OLD_POD = pod("web-5c4b7d9f86-q8zlm", owner("apps/v1", "ReplicaSet", "web-5c4b7d9f86"))
OLD_POD_2 = pod("web-5c4b7d9f86-r2n7d", owner("apps/v1", "ReplicaSet", "web-5c4b7d9f86"))

# --- StatefulSet -------------------------------------------------------------------------------

STATEFULSET = load("""
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop, uid: uid-statefulset-db, generation: 2}
spec: {replicas: 2, serviceName: db, selector: {matchLabels: {app: db}}}
status:
  observedGeneration: 2
  replicas: 2
  currentRevision: db-59c8f7d6b4
  updateRevision: db-6b8d4c6b5f
  updatedReplicas: 1
""")
STATEFULSET_NEW = load("""
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop, uid: uid-statefulset-db, generation: 1}
spec: {replicas: 2, serviceName: db, selector: {matchLabels: {app: db}}}
status: {replicas: 0}
""")
STS_OWNER = owner("apps/v1", "StatefulSet", "db")
DB_1_NEW = pod("db-1", STS_OWNER, {"controller-revision-hash": "db-6b8d4c6b5f"})
DB_0_OLD = pod("db-0", STS_OWNER, {"controller-revision-hash": "db-59c8f7d6b4"})

# --- DaemonSet ---------------------------------------------------------------------------------

DAEMONSET = load("""
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: shop
  uid: uid-daemonset-agent
  generation: 4
  annotations: {deprecated.daemonset.template.generation: "4"}
spec: {selector: {matchLabels: {app: agent}}}
status: {observedGeneration: 4, desiredNumberScheduled: 2, updatedNumberScheduled: 1}
""")
DS_OWNER = owner("apps/v1", "DaemonSet", "agent")
AGENT_NEW = pod(
    "agent-8kq2z", DS_OWNER, {"pod-template-generation": "4", "controller-revision-hash": "7c9d"}
)
AGENT_OLD = pod(
    "agent-t5w4m", DS_OWNER, {"pod-template-generation": "3", "controller-revision-hash": "5b6f"}
)

# --- Job and bare pods -------------------------------------------------------------------------

JOB_POD = pod(
    "migrate-x7f2p",
    owner("batch/v1", "Job", "migrate"),
    {"batch.kubernetes.io/job-name": "migrate", "job-name": "migrate"},
)
BARE_POD = pod("debug")


CONTROLLERS = [DEPLOYMENT, NEW_RS, OLD_RS, STATEFULSET, DAEMONSET]


def names(pods: list[Any]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


CURRENT_POD_CASES = [
    pytest.param([], [], id="nothing"),
    pytest.param(
        [DEPLOYMENT, NEW_RS, OLD_RS, OLD_POD, NEW_POD, OLD_POD_2],
        ["web-7d9f8b6c5d-x2kqp"],
        id="deployment-old-replicaset-excluded",
    ),
    pytest.param(
        [
            {**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"], "annotations": {REVISION: "2"}}},
            NEW_RS,
            OLD_RS,
            OLD_POD,
            NEW_POD,
        ],
        ["web-5c4b7d9f86-q8zlm"],
        id="deployment-revision-decides-not-the-name",
    ),
    pytest.param(
        [NEW_RS, OLD_RS, OLD_POD, NEW_POD],
        ["web-5c4b7d9f86-q8zlm", "web-7d9f8b6c5d-x2kqp"],
        id="deployment-not-cached-keeps-all",
    ),
    pytest.param(
        [DEPLOYMENT, OLD_POD, NEW_POD],
        ["web-5c4b7d9f86-q8zlm", "web-7d9f8b6c5d-x2kqp"],
        id="replicaset-not-cached-keeps-all",
    ),
    pytest.param(
        [
            DEPLOYMENT,
            replicaset("web-4f8b9c7d6e", "1", deployment=None),
            pod("web-4f8b9c7d6e-abcde", owner("apps/v1", "ReplicaSet", "web-4f8b9c7d6e")),
        ],
        ["web-4f8b9c7d6e-abcde"],
        id="bare-replicaset",
    ),
    pytest.param(
        [
            DEPLOYMENT,
            NEW_RS,
            OLD_RS,
            pod("web-5c4b7d9f86-zz9zz", owner("apps/v1", "ReplicaSet", "web-5c4b7d9f86", False)),
        ],
        ["web-5c4b7d9f86-zz9zz"],
        id="non-controller-owner-ignored",
    ),
    pytest.param(
        [
            DEPLOYMENT,
            NEW_RS,
            OLD_RS,
            NEW_POD,
            pod(
                "web-7d9f8b6c5d-gone1", NEW_POD["metadata"]["ownerReferences"][0], terminating=True
            ),
        ],
        ["web-7d9f8b6c5d-x2kqp"],
        id="terminating-excluded",
    ),
    pytest.param(
        # Same name as the old ReplicaSet, but in another namespace: the pod's owner is unknown.
        [{**OLD_RS, "metadata": {**OLD_RS["metadata"], "namespace": "other"}}, DEPLOYMENT, OLD_POD],
        ["web-5c4b7d9f86-q8zlm"],
        id="replicaset-in-other-namespace-is-not-the-owner",
    ),
    pytest.param([STATEFULSET, DB_0_OLD, DB_1_NEW], ["db-1"], id="statefulset-update-revision"),
    pytest.param(
        [STATEFULSET_NEW, DB_0_OLD, DB_1_NEW],
        ["db-0", "db-1"],
        id="statefulset-without-update-revision-keeps-all",
    ),
    pytest.param([DB_0_OLD, DB_1_NEW], ["db-0", "db-1"], id="statefulset-not-cached-keeps-all"),
    pytest.param([DAEMONSET, AGENT_OLD, AGENT_NEW], ["agent-8kq2z"], id="daemonset-generation"),
    pytest.param([AGENT_OLD, AGENT_NEW], ["agent-t5w4m", "agent-8kq2z"], id="daemonset-uncached"),
    pytest.param([JOB_POD, BARE_POD], ["migrate-x7f2p", "debug"], id="job-and-bare-pods"),
    pytest.param([pod("debug", terminating=True)], [], id="terminating-bare-pod"),
    pytest.param(
        [
            *CONTROLLERS,
            OLD_POD,
            NEW_POD,
            DB_0_OLD,
            DB_1_NEW,
            AGENT_OLD,
            AGENT_NEW,
            JOB_POD,
            BARE_POD,
        ],
        ["web-7d9f8b6c5d-x2kqp", "db-1", "agent-8kq2z", "migrate-x7f2p", "debug"],
        id="everything-together",
    ),
]


@pytest.mark.parametrize(("cached", "expected"), CURRENT_POD_CASES)
def test_current_pods(cached: list[dict[str, Any]], expected: list[str]) -> None:
    assert names(current_pods(cached)) == expected


def test_daemonset_pods_stay_current_after_a_change_outside_the_template() -> None:
    # updateStrategy changed: generation 5, template generation still 4, no pod was replaced.
    daemonset = load("""
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: shop
  generation: 5
  annotations: {deprecated.daemonset.template.generation: "4"}
spec:
  selector: {matchLabels: {app: agent}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 2}}
status: {observedGeneration: 5, desiredNumberScheduled: 1, updatedNumberScheduled: 1}
""")
    assert names(current_pods([daemonset, AGENT_NEW])) == ["agent-8kq2z"]


# --- summarize_pods ----------------------------------------------------------------------------

POD_CRASH_LOOP = load("""
apiVersion: v1
kind: Pod
metadata:
  name: web-7d9f8b6c5d-x2kqp
  namespace: shop
spec:
  containers: [{name: app, image: "web:1.4.4"}]
status:
  phase: Running
  conditions:
  - {type: Initialized, status: "True"}
  - {type: Ready, status: "False", reason: ContainersNotReady,
     message: "containers with unready status: [app]"}
  - {type: PodScheduled, status: "True"}
  containerStatuses:
  - name: app
    ready: false
    started: false
    restartCount: 5
    state:
      waiting:
        reason: CrashLoopBackOff
        message: back-off 2m40s restarting failed container=app pod=web-7d9f8b6c5d-x2kqp_shop(3e2d)
    lastState:
      terminated: {exitCode: 1, reason: Error, finishedAt: "2025-03-02T11:06:02Z"}
""")

POD_INIT_CRASH = load("""
apiVersion: v1
kind: Pod
metadata: {name: api-6b7c8d9e0f-hj3kl, namespace: shop}
status:
  phase: Pending
  conditions:
  - {type: Initialized, status: "False", reason: ContainersNotInitialized}
  - {type: Ready, status: "False", reason: ContainersNotReady}
  initContainerStatuses:
  - name: wait-for-db
    ready: false
    restartCount: 3
    state:
      waiting: {reason: CrashLoopBackOff, message: back-off 40s restarting failed container}
    lastState:
      terminated: {exitCode: 2, reason: Error}
  containerStatuses:
  - name: api
    ready: false
    restartCount: 0
    state:
      waiting: {reason: PodInitializing}
""")

POD_READY_WITH_RESTARTS = load("""
apiVersion: v1
kind: Pod
metadata: {name: web-7d9f8b6c5d-m4n5p, namespace: shop}
status:
  phase: Running
  conditions:
  - {type: Ready, status: "True"}
  initContainerStatuses:
  - {name: migrate, ready: true, restartCount: 1, state: {terminated: {exitCode: 0}}}
  containerStatuses:
  - {name: app, ready: true, restartCount: 2, state: {running: {}}}
  - {name: proxy, ready: true, restartCount: 4, state: {running: {}}}
""")

POD_COMPLETED = load("""
apiVersion: v1
kind: Pod
metadata: {name: migrate-x7f2p, namespace: shop}
status:
  phase: Succeeded
  conditions:
  - {type: Ready, status: "False", reason: PodCompleted}
  containerStatuses:
  - name: migrate
    ready: false
    restartCount: 0
    state:
      terminated: {exitCode: 0, reason: Completed}
""")

POD_OOM = load("""
apiVersion: v1
kind: Pod
metadata: {name: report-q2w3e, namespace: shop}
spec: {restartPolicy: Never}
status:
  phase: Failed
  conditions:
  - {type: Ready, status: "False", reason: PodFailed}
  containerStatuses:
  - name: report
    ready: false
    restartCount: 0
    state:
      terminated: {exitCode: 137, reason: OOMKilled}
""")

POD_UNSCHEDULED = load("""
apiVersion: v1
kind: Pod
metadata: {name: web-7d9f8b6c5d-p9o8i, namespace: shop}
status:
  phase: Pending
  conditions:
  - type: PodScheduled
    status: "False"
    reason: Unschedulable
    message: "0/3 nodes are available: 3 Insufficient cpu."
""")

CRASH_SENTENCE = (
    "pod web-7d9f8b6c5d-x2kqp container app is in CrashLoopBackOff (exit code 1, 5 restarts): "
    "back-off 2m40s restarting failed container=app pod=web-7d9f8b6c5d-x2kqp_shop(3e2d)"
)
INIT_SENTENCE = (
    "pod api-6b7c8d9e0f-hj3kl container wait-for-db is in CrashLoopBackOff "
    "(exit code 2, 3 restarts): back-off 40s restarting failed container"
)

SUMMARY_CASES = [
    pytest.param([], 0, True, {}, id="no-pods"),
    pytest.param([pod("web-7d9f8b6c5d-x2kqp")], 0, True, {}, id="ready"),
    pytest.param([POD_READY_WITH_RESTARTS], 7, True, {}, id="restarts-summed-over-containers"),
    pytest.param(
        [POD_CRASH_LOOP],
        5,
        False,
        {"web-7d9f8b6c5d-x2kqp/app/CrashLoopBackOff": CRASH_SENTENCE},
        id="crash-loop",
    ),
    pytest.param(
        [POD_INIT_CRASH],
        3,
        False,
        {"api-6b7c8d9e0f-hj3kl/wait-for-db/CrashLoopBackOff": INIT_SENTENCE},
        id="init-container-crash-loop",
    ),
    pytest.param([POD_COMPLETED], 0, True, {}, id="completed-counts-as-ready"),
    pytest.param(
        [POD_OOM],
        0,
        True,
        {
            "report-q2w3e/report/OOMKilled": (
                "pod report-q2w3e container report is in OOMKilled (exit code 137)"
            )
        },
        id="failed-pod-problem-but-not-unready",
    ),
    pytest.param([POD_UNSCHEDULED], 0, False, {}, id="unscheduled"),
    pytest.param(
        [POD_READY_WITH_RESTARTS, POD_CRASH_LOOP, POD_INIT_CRASH, POD_COMPLETED],
        15,
        False,
        {
            "web-7d9f8b6c5d-x2kqp/app/CrashLoopBackOff": CRASH_SENTENCE,
            "api-6b7c8d9e0f-hj3kl/wait-for-db/CrashLoopBackOff": INIT_SENTENCE,
        },
        id="several",
    ),
]


@pytest.mark.parametrize(("pods", "restarts", "ready", "problems"), SUMMARY_CASES)
def test_summarize_pods(
    pods: list[dict[str, Any]], restarts: int, ready: bool, problems: dict[str, str]
) -> None:
    observation = Observation()
    summarize_pods(pods, observation)
    assert (observation.restarts, observation.all_pods_ready) == (restarts, ready)
    assert {key: p.sentence() for key, p in observation.pod_problems.items()} == problems
    assert all(key.endswith(f"/{p.reason}") for key, p in observation.pod_problems.items())
    assert (observation.objects, observation.needs_polling) == ({}, False)


def test_summarize_only_the_current_pods() -> None:
    crashing_old = {
        **POD_CRASH_LOOP,
        "metadata": {**OLD_POD["metadata"], "name": "web-5c4b7d9f86-q8zlm"},
    }
    observation = Observation()
    summarize_pods(current_pods([DEPLOYMENT, NEW_RS, OLD_RS, crashing_old, NEW_POD]), observation)
    assert (observation.restarts, observation.all_pods_ready, observation.pod_problems) == (
        0,
        True,
        {},
    )


# --- failing watches ---------------------------------------------------------------------------


class FailingCache:
    """A watch cache whose watches fail with `error`."""

    def __init__(self, error: ApiError) -> None:
        self.error = error

    def objects(self, job_namespace: str, job: str) -> list[dict[str, Any]]:
        return []

    def problem(self, namespaces: Any) -> ApiError:
        return self.error

    async def acquire(self, namespaces: Any) -> None: ...
    async def release(self, namespaces: Any) -> None: ...


class NoReads:
    """A cluster that is never read: the run's objects are all of watched kinds."""

    def impersonating(self, user: str | None) -> "NoReads":
        return self


def tagged(error: ApiError, cluster: str) -> ApiError:
    error.cluster = cluster
    return error


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        pytest.param(Unreachable("Unreachable", "refused"), True, id="outage: waited out"),
        pytest.param(
            tagged(Forbidden("Forbidden", "no"), "https://b"), True, id="a target refuses"
        ),
        pytest.param(Forbidden("Forbidden", "no"), False, id="own cluster refuses: unseen"),
    ],
)
async def test_failing_watches(error: ApiError, raised: bool) -> None:
    observer = Observer(NoReads(), FailingCache(error))  # type: ignore[arg-type]
    ref = ObjectRef("apps/v1", "Deployment", "team-a", "web")
    if raised:
        with pytest.raises(type(error)):
            await observer.observe("team-a", "web", [ref], None)
    else:
        observation = await observer.observe("team-a", "web", [ref], None)
        assert observation.objects == {ref: None}
