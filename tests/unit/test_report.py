"""What a run tells people: images, links, the diagnosis, the message per ledger entry."""

from dataclasses import replace
from typing import Any

import pytest

from deploybell.api.deployjob import Source
from deploybell.deploy.health import PodProblem
from deploybell.deploy.report import (
    MAX_IMAGES,
    MAX_PODS,
    MAX_WARNINGS,
    Presentation,
    RunFacts,
    delivered_condition,
    diagnosis,
    images_of,
    message_for,
)
from deploybell.deploy.run import Phase, RunState
from deploybell.notify.model import ObjectStatus, PodDiagnosis, WarningEvent

T0 = "2025-03-02T11:00:00Z"
T1 = "2025-03-02T11:04:12Z"


def pod_spec(*images: str, init: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "initContainers": [{"name": f"init{i}", "image": im} for i, im in enumerate(init)],
        "containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)],
    }


def deployment(*images: str, init: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": pod_spec(*images, init=init),
            },
        },
    }


def pod(*images: str, init: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "spec": pod_spec(*images, init=init)}


def job(*images: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"backoffLimit": 1, "template": {"spec": pod_spec(*images)}},
    }


def cronjob(*images: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": pod_spec(*images)}}},
        },
    }


SERVICE = {"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"image": "not/an:image"}}


# --- images_of --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        pytest.param([], [], id="nothing"),
        pytest.param([SERVICE, CONFIGMAP], [], id="no-workloads"),
        pytest.param([deployment("web:1")], ["web:1"], id="deployment"),
        pytest.param([pod("debug:2")], ["debug:2"], id="pod"),
        pytest.param([job("migrate:3")], ["migrate:3"], id="job"),
        pytest.param([cronjob("report:4")], ["report:4"], id="cronjob"),
        pytest.param(
            [deployment("web:1", "sidecar:9", init=("setup:1",))],
            ["setup:1", "web:1", "sidecar:9"],
            id="init-containers-first",
        ),
        pytest.param(
            [pod("app:1", init=("wait:1",))], ["wait:1", "app:1"], id="pod-init-containers"
        ),
        pytest.param(
            [deployment("web:1", "proxy:2"), SERVICE, job("web:1"), deployment("proxy:2")],
            ["web:1", "proxy:2"],
            id="de-duplicated",
        ),
        pytest.param(
            [job("migrate:3"), deployment("web:1"), cronjob("report:4"), pod("debug:2")],
            ["migrate:3", "web:1", "report:4", "debug:2"],
            id="in-object-order",
        ),
        pytest.param(
            [
                {
                    "kind": "Deployment",
                    "spec": {
                        "template": {"spec": {"containers": [{"name": "x"}, "junk", {"image": ""}]}}
                    },
                },
                {"kind": "Deployment", "spec": {"template": None}},
                {"kind": "CronJob", "spec": {"jobTemplate": None}},
                {"kind": "Pod", "spec": None},
                {"kind": "Pod"},
            ],
            [],
            id="malformed-ignored",
        ),
        pytest.param(
            [pod(*(f"img:{i}" for i in range(MAX_IMAGES + 5)))],
            [f"img:{i}" for i in range(MAX_IMAGES)],
            id="bounded",
        ),
    ],
)
def test_images_of(objects: list[dict[str, Any]], expected: list[str]) -> None:
    assert images_of(objects) == expected


# --- Presentation.link ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("", "", id="no-template"),
        pytest.param(
            "https://dash.example/{namespace}/{job}?run={run}",
            "https://dash.example/team-a/web?run=3",
            id="namespace-job-run",
        ),
        pytest.param(
            "https://{cluster}.example/{namespace}/{job}",
            "https://prod-eu.example/team-a/web",
            id="cluster",
        ),
        pytest.param("https://dash.example/static", "https://dash.example/static", id="constant"),
        pytest.param("https://dash.example/{nope}", "", id="unknown-field"),
        pytest.param("https://dash.example/{0}", "", id="positional-field"),
        pytest.param("https://dash.example/{job", "", id="unbalanced-brace"),
        pytest.param(
            "https://dash.example/{run:d}-{job!r}", "https://dash.example/3-'web'", id="spec"
        ),
        pytest.param("https://dash.example/{run:zz}", "", id="bad-format-spec"),
    ],
)
def test_link(template: str, expected: str) -> None:
    presentation = Presentation(cluster="prod-eu", link_template=template)
    assert presentation.link("team-a", "web", 3) == expected


# --- diagnosis --------------------------------------------------------------------------------


def problem(i: int, message: str = "back-off restarting failed container") -> PodProblem:
    return PodProblem(f"web-{i}", "app", "CrashLoopBackOff", message, 1, i)


def warning(i: int, message: str = "Back-off restarting failed container") -> WarningEvent:
    return WarningEvent(f"Pod web-{i}", "BackOff", message, i + 1)


def test_diagnosis_shape() -> None:
    got = diagnosis(
        [problem(0), PodProblem("web-1", "init", "ErrImagePull", "not found", None, 0)],
        [warning(0)],
    )
    assert got == {
        "pods": [
            {
                "pod": "web-0",
                "container": "app",
                "reason": "CrashLoopBackOff",
                "message": "back-off restarting failed container",
                "exitCode": 1,
                "restarts": 0,
            },
            {
                "pod": "web-1",
                "container": "init",
                "reason": "ErrImagePull",
                "message": "not found",
                "exitCode": None,
                "restarts": 0,
            },
        ],
        "warnings": [
            {
                "object": "Pod web-0",
                "reason": "BackOff",
                "message": "Back-off restarting failed container",
                "count": 1,
            }
        ],
    }


@pytest.mark.parametrize(
    ("pods", "warnings"),
    [(0, 0), (1, 1), (MAX_PODS, MAX_WARNINGS), (MAX_PODS + 3, MAX_WARNINGS + 7), (50, 50)],
)
def test_diagnosis_is_bounded(pods: int, warnings: int) -> None:
    got = diagnosis(
        [problem(i, "m" * 1000) for i in range(pods)],
        [warning(i, "w" * 1000) for i in range(warnings)],
    )
    assert [p["pod"] for p in got["pods"]] == [f"web-{i}" for i in range(min(pods, MAX_PODS))]
    assert [w["object"] for w in got["warnings"]] == [
        f"Pod web-{i}" for i in range(min(warnings, MAX_WARNINGS))
    ]
    assert all(p["message"] == "m" * 300 for p in got["pods"])
    assert all(w["message"] == "w" * 300 for w in got["warnings"])


# --- message_for ------------------------------------------------------------------------------

PRESENTATION = Presentation(cluster="prod-eu", link_template="https://dash.example/{job}/{run}")
DIAGNOSIS = {
    "pods": [
        {
            "pod": "web-7d9f8-x2kqp",
            "container": "app",
            "reason": "CrashLoopBackOff",
            "message": "back-off 40s",
            "exitCode": 1,
            "restarts": 5,
        }
    ],
    "warnings": [{"object": "Pod web-7d9f8-x2kqp", "reason": "BackOff", "message": "Back-off"}],
}
HISTORY: list[dict[str, Any]] = [
    {
        "run": 4,
        "phase": "Failed",
        "reason": "CrashLoopBackOff",
        "message": "pod web-1 crashed",
        "startedAt": T0,
        "finishedAt": T1,
        "revision": "sha256:4444",
    },
    {
        "run": 3,
        "phase": "Succeeded",
        "reason": "RolloutComplete",
        "message": "all 2 objects rolled out",
        "startedAt": "2025-03-01T09:00:00Z",
        "finishedAt": "2025-03-01T09:00:30Z",
        "revision": "sha256:3333",
    },
]
RESOURCES: list[dict[str, Any]] = [
    {
        "kind": "Deployment",
        "name": "web",
        "namespace": "team-a",
        "status": "Failed",
        "message": "x",
    },
    {"kind": "Service", "name": "web", "namespace": "team-a", "status": "Current"},
    {"kind": "ClusterRole", "name": "reader", "namespace": None},
]


def facts(state: RunState, rollback: dict[str, Any] | None = None) -> RunFacts:
    return RunFacts(
        namespace="team-a",
        job="web",
        state=state,
        history=HISTORY,
        resources=RESOURCES,
        images=["web:1.4.3", "proxy:2"],
        diagnosis=DIAGNOSIS,
        rollback=rollback or {},
    )


def entry(run: int, event: str, recipient: str | None = "#deploys") -> dict[str, Any]:
    key = f"{run}/{event}/team-chat" + (f"/{recipient}" if recipient else "")
    out = {"id": key, "run": run, "event": event, "notification": "team-chat", "state": "Pending"}
    if recipient is not None:
        out["recipient"] = recipient
    return out


FAILED_5 = RunState(
    run=5,
    phase=Phase.FAILED,
    started_at=T0,
    finished_at="2025-03-02T11:01:05Z",
    reason="ProgressDeadlineExceeded",
    message="Deployment web did not progress",
    revision="sha256:5555",
)
DEPLOYING_5 = RunState(
    run=5, phase=Phase.DEPLOYING, started_at=T0, reason="Applying", revision="sha256:5555"
)
SUCCEEDED_5 = RunState(
    run=5,
    phase=Phase.SUCCEEDED,
    started_at=T0,
    finished_at="2025-03-02T11:00:42Z",
    reason="RolloutComplete",
    message="all 3 objects rolled out",
    revision="sha256:5555",
)


def test_message_for_failure_of_the_current_run() -> None:
    got = message_for(
        entry(5, "failure"), facts(FAILED_5, {"toRun": 3, "phase": "RolledBack"}), PRESENTATION
    )
    assert (got.job, got.namespace, got.run, got.event) == ("web", "team-a", 5, "failure")
    assert (got.phase, got.reason, got.message) == (
        "Failed",
        "ProgressDeadlineExceeded",
        "Deployment web did not progress",
    )
    assert (got.started_at, got.finished_at, got.duration_seconds) == (
        T0,
        "2025-03-02T11:01:05Z",
        65.0,
    )
    assert got.revision == "sha256:5555"
    assert got.images == ("web:1.4.3", "proxy:2")
    assert got.objects == (
        ObjectStatus("Deployment", "web", "team-a", "Failed", "x"),
        ObjectStatus("Service", "web", "team-a", "Current", ""),
        ObjectStatus("ClusterRole", "reader", "", "", ""),
    )
    assert got.cluster == "prod-eu"
    assert got.link == "https://dash.example/web/5"
    assert got.pods == (
        PodDiagnosis("web-7d9f8-x2kqp", "app", "CrashLoopBackOff", "back-off 40s", 1, 5),
    )
    assert got.warnings == (WarningEvent("Pod web-7d9f8-x2kqp", "BackOff", "Back-off", 1),)
    assert got.rolled_back_to == 3
    assert got.idempotency_key == "team-a/web/5/failure/team-chat/#deploys"


@pytest.mark.parametrize(
    ("state", "the_entry", "expected"),
    [
        pytest.param(
            SUCCEEDED_5,
            entry(5, "success"),
            ("Succeeded", "RolloutComplete", "all 3 objects rolled out", T0, 42.0, "sha256:5555"),
            id="success-current-run",
        ),
        pytest.param(
            DEPLOYING_5,
            entry(4, "failure"),
            ("Failed", "CrashLoopBackOff", "pod web-1 crashed", T0, 252.0, "sha256:4444"),
            id="failure-of-a-past-run",
        ),
        pytest.param(
            DEPLOYING_5,
            entry(3, "success"),
            (
                "Succeeded",
                "RolloutComplete",
                "all 2 objects rolled out",
                "2025-03-01T09:00:00Z",
                30.0,
                "sha256:3333",
            ),
            id="success-of-an-older-run",
        ),
        pytest.param(
            DEPLOYING_5,
            entry(1, "success"),
            ("", "", "", "", None, ""),
            id="run-not-in-history",
        ),
        pytest.param(
            FAILED_5,
            entry(5, "start"),
            ("Deploying", "Deploying", "", T0, None, "sha256:5555"),
            id="start-of-a-finished-run-has-no-outcome",
        ),
        pytest.param(
            DEPLOYING_5,
            entry(5, "start"),
            ("Deploying", "Deploying", "", T0, None, "sha256:5555"),
            id="start-current-run",
        ),
        pytest.param(
            DEPLOYING_5,
            entry(4, "start"),
            ("Deploying", "Deploying", "", T0, None, "sha256:4444"),
            id="start-of-a-past-run",
        ),
    ],
)
def test_message_for_run_and_event(
    state: RunState, the_entry: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    got = message_for(the_entry, facts(state), PRESENTATION)
    assert (
        got.phase,
        got.reason,
        got.message,
        got.started_at,
        got.duration_seconds,
        got.revision,
    ) == expected
    assert got.run == the_entry["run"]
    assert got.event == the_entry["event"]
    assert got.link == f"https://dash.example/web/{the_entry['run']}"
    if the_entry["event"] == "start":
        assert got.finished_at == ""
        assert got.summary() == "deploying web:1.4.3, proxy:2"


@pytest.mark.parametrize(
    ("state", "the_entry", "rollback", "has_diagnosis", "rolled_back_to"),
    [
        pytest.param(FAILED_5, entry(5, "failure"), {}, True, None, id="current-failure"),
        pytest.param(
            FAILED_5,
            entry(5, "failure"),
            {"toRun": 3, "phase": "RolledBack"},
            True,
            3,
            id="current-failure-rolled-back",
        ),
        pytest.param(
            DEPLOYING_5,
            entry(4, "failure"),
            {"toRun": 3, "phase": "RolledBack"},
            False,
            None,
            id="past-failure-gets-neither",
        ),
        pytest.param(
            SUCCEEDED_5,
            entry(5, "success"),
            {"toRun": 3, "phase": "RolledBack"},
            False,
            None,
            id="success",
        ),
        pytest.param(
            FAILED_5,
            entry(5, "start"),
            {"toRun": 3, "phase": "RolledBack"},
            False,
            None,
            id="start-of-failed-run",
        ),
        pytest.param(
            FAILED_5, entry(5, "cancel"), {"toRun": 3}, False, None, id="cancel-of-current-run"
        ),
    ],
)
def test_diagnosis_and_rollback_only_on_failure_of_the_current_run(
    state: RunState,
    the_entry: dict[str, Any],
    rollback: dict[str, Any],
    has_diagnosis: bool,
    rolled_back_to: int | None,
) -> None:
    got = message_for(the_entry, facts(state, rollback), PRESENTATION)
    assert bool(got.pods) is has_diagnosis
    assert bool(got.warnings) is has_diagnosis
    assert got.rolled_back_to == rolled_back_to


def test_failed_rollback_is_not_announced_as_rolled_back() -> None:
    rollback = {"toRun": 3, "revision": "sha256:3333", "phase": "RollbackFailed"}
    got = message_for(entry(5, "failure"), facts(FAILED_5, rollback), PRESENTATION)
    assert got.rolled_back_to is None


@pytest.mark.parametrize(
    ("the_entry", "key"),
    [
        pytest.param(entry(5, "failure"), "team-a/web/5/failure/team-chat/#deploys", id="slack"),
        pytest.param(entry(5, "success", ""), "team-a/web/5/success/team-chat", id="webhook"),
        pytest.param(entry(5, "start", None), "team-a/web/5/start/team-chat", id="unexpanded"),
    ],
)
def test_idempotency_key(the_entry: dict[str, Any], key: str) -> None:
    assert message_for(the_entry, facts(FAILED_5), PRESENTATION).idempotency_key == key


@pytest.mark.parametrize(
    ("started", "finished", "seconds"),
    [
        pytest.param(T0, T1, 252.0, id="minutes"),
        pytest.param(T0, T0, 0.0, id="zero"),
        pytest.param("2025-03-02T23:59:30Z", "2025-03-03T00:00:15Z", 45.0, id="over-midnight"),
        pytest.param(T0, "", None, id="not-finished"),
        pytest.param("", T1, None, id="not-started"),
        pytest.param(T0, "yesterday", None, id="unparsable"),
    ],
)
def test_duration(started: str, finished: str, seconds: float | None) -> None:
    state = RunState(run=5, phase=Phase.SUCCEEDED, started_at=started, finished_at=finished)
    got = message_for(entry(5, "success"), facts(state), Presentation())
    assert got.duration_seconds == seconds
    assert got.cluster == ""
    assert got.link == ""


# --- delivered_condition ----------------------------------------------------------------------


def ledger_entry(
    run: int, event: str, state: str, recipients: int | None = 1, **more: Any
) -> dict[str, Any]:
    """A ledger row; `recipients=None`: still waiting for its Notification (not expanded)."""
    out: dict[str, Any] = {
        "id": f"{run}/{event}/team-chat",
        "run": run,
        "event": event,
        "notification": "team-chat",
        "state": state,
    }
    if recipients is not None:
        sent = recipients if state == "Sent" else 0
        failed = recipients if state == "Failed" else 0
        out |= {"recipients": recipients, "sent": sent, "failed": failed}
        if state == "Pending":
            out["pending"] = [f"key{i}" for i in range(recipients)]
    return {**out, **more}


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param(
            [], (True, "Delivered", "every message of the latest run was delivered"), id="empty"
        ),
        pytest.param(
            [ledger_entry(5, "start", "Sent"), ledger_entry(5, "success", "Sent")],
            (True, "Delivered", "every message of the latest run was delivered"),
            id="all-sent",
        ),
        pytest.param(
            [ledger_entry(5, "start", "Sent"), ledger_entry(5, "success", "Pending", 3)],
            (True, "Pending", "3 messages waiting to be delivered"),
            id="pending-counts-recipients",
        ),
        pytest.param(
            [
                ledger_entry(5, "start", "Failed", lastError="#deploys: slack: channel_not_found"),
                ledger_entry(5, "success", "Pending"),
            ],
            (
                False,
                "DeliveryFailed",
                "start via team-chat: #deploys: slack: channel_not_found",
            ),
            id="failed-wins-over-pending",
        ),
        pytest.param(
            [
                ledger_entry(5, "start", "Sent"),
                ledger_entry(5, "failure", "Failed", lastError="webhook: 404"),
            ],
            (False, "DeliveryFailed", "failure via team-chat: webhook: 404"),
            id="webhook-names-the-notification",
        ),
        pytest.param(
            [ledger_entry(5, "start", "Failed", 3, lastError="#a: a gone")],
            (False, "DeliveryFailed", "start via team-chat: #a: a gone (and 2 more)"),
            id="first-failure-and-count",
        ),
        pytest.param(
            [
                ledger_entry(
                    5, "start", "Pending", 2, failed=1, pending=["k"], lastError="#a: a gone"
                )
            ],
            (False, "DeliveryFailed", "start via team-chat: #a: a gone"),
            id="a-recipient-given-up-while-another-is-retried",
        ),
        pytest.param(
            [
                ledger_entry(4, "failure", "Failed", lastError="old"),
                ledger_entry(6, "start", "Pending"),
                ledger_entry(5, "start", "Sent"),
            ],
            (True, "Delivered", "every message of the latest run was delivered"),
            id="other-runs-ignored",
        ),
        pytest.param(
            [
                ledger_entry(5, "start", "Pending", 2),
                ledger_entry(5, "success", "Pending", None),
            ],
            (
                None,
                "NotificationMissing",
                "waiting for Notification team-chat (not found or invalid): "
                "2 messages of run 5 wait for it",
            ),
            id="waiting-for-a-missing-notification-is-unknown",
        ),
        pytest.param(
            [
                ledger_entry(5, "start", "Pending", None, notification="later"),
                ledger_entry(5, "start", "Pending", None, notification="chat"),
            ],
            (
                None,
                "NotificationMissing",
                "waiting for Notification chat, later (not found or invalid): "
                "2 messages of run 5 wait for it",
            ),
            id="every-missing-notification-named",
        ),
        pytest.param(
            [
                ledger_entry(
                    5,
                    "start",
                    "Failed",
                    None,
                    notification="later",
                    lastError="Notification later not found",
                ),
            ],
            (False, "NotificationMissing", "start via later: Notification later not found"),
            id="given-up-missing-notification-is-false",
        ),
    ],
)
def test_delivered_condition(
    entries: list[dict[str, Any]], expected: tuple[bool | None, str, str]
) -> None:
    assert delivered_condition(entries, 5) == expected


# --- the run's source: recorded with the run, never read from the spec -------------------------

RUN_SOURCE = Source(
    "https://github.com/acme/web",
    "4f2c9e1d8a7b",
    "production",
    "2025-03-02T10:00:00Z",
    "https://x/1",
)


def test_a_message_says_the_source_its_run_recorded() -> None:
    got = message_for(
        entry(5, "success"), facts(replace(SUCCEEDED_5, source=RUN_SOURCE)), PRESENTATION
    )
    assert (got.environment, got.commit, got.repository, got.change_url, got.committed_at) == (
        "production",
        "4f2c9e1d8a7b",
        "https://github.com/acme/web",
        "https://x/1",
        "2025-03-02T10:00:00Z",
    )


def test_a_past_runs_message_says_that_runs_source_not_the_latest() -> None:
    history = [{**HISTORY[0], "source": {"revision": "44444444", "environment": "staging"}}]
    state = replace(DEPLOYING_5, source=RUN_SOURCE)
    past = replace(facts(state), history=history)
    got = message_for(entry(4, "failure"), past, PRESENTATION)
    assert (got.environment, got.commit, got.repository) == ("staging", "44444444", "")


@pytest.mark.parametrize(
    "source", [None, Source(revision="4f2c9e1d8a7b")], ids=["no-source", "no-environment"]
)
def test_the_environment_defaults_to_the_namespace(source: Source | None) -> None:
    """One rule with status.history and DORA (api.deployjob.environment_of)."""
    state = replace(SUCCEEDED_5, source=source)
    assert message_for(entry(5, "success"), facts(state), PRESENTATION).environment == "team-a"
