"""The run state machine: status parsing, the next action, the verdict, conditions, history."""

import copy
from typing import Any

import pytest

from deploybell.api.deployjob import Source
from deploybell.deploy.health import Health, PodProblem, Status
from deploybell.deploy.live import LiveJob, legacy_source
from deploybell.deploy.run import (
    Action,
    Outcome,
    Phase,
    RunState,
    Trigger,
    Verdict,
    conditions,
    decide,
    finish,
    judge,
    push_history,
    start,
)
from deploybell.deploy.status import JobStatus

T0 = "2025-03-02T11:00:00Z"
T1 = "2025-03-02T11:04:12Z"
T2 = "2025-03-02T11:09:30Z"
REVISION = "sha256:9f2c4a1e7b3d5c60"

# status as Runner.persist writes it in the middle of a run.
STATUS_VERIFYING: dict[str, Any] = {
    "observedGeneration": 7,
    "phase": "Verifying",
    "run": 4,
    "trigger": {"generation": 7, "redeploy": "2025-03-02T10:58:00Z", "cancel": "stop-1"},
    "startedAt": T0,
    "finishedAt": None,
    "reason": "Verifying",
    "message": "rolled out; must stay healthy for 60s",
    "revision": REVISION,
    "canceledBy": None,
    "conditions": [],
    "resources": [],
    "history": [],
    "notifications": [],
}


# --- RunState.from_status ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(None, RunState(), id="no-status"),
        pytest.param({}, RunState(), id="empty-status"),
        pytest.param(
            # What a freshly created object's status looks like before the first persist.
            {"observedGeneration": None, "phase": None, "run": None, "trigger": None},
            RunState(),
            id="nulls",
        ),
        pytest.param(
            STATUS_VERIFYING,
            RunState(
                run=4,
                phase=Phase.VERIFYING,
                trigger=Trigger(7, "2025-03-02T10:58:00Z", "stop-1"),
                started_at=T0,
                finished_at="",
                reason="Verifying",
                message="rolled out; must stay healthy for 60s",
                revision=REVISION,
            ),
            id="full",
        ),
        pytest.param(
            {**STATUS_VERIFYING, "phase": "Succeeded", "finishedAt": T1},
            RunState(
                run=4,
                phase=Phase.SUCCEEDED,
                trigger=Trigger(7, "2025-03-02T10:58:00Z", "stop-1"),
                started_at=T0,
                finished_at=T1,
                reason="Verifying",
                message="rolled out; must stay healthy for 60s",
                revision=REVISION,
            ),
            id="finished",
        ),
        pytest.param(
            {**STATUS_VERIFYING, "phase": "Paused"},
            RunState(
                run=4,
                phase=None,
                trigger=Trigger(7, "2025-03-02T10:58:00Z", "stop-1"),
                started_at=T0,
                reason="Verifying",
                message="rolled out; must stay healthy for 60s",
                revision=REVISION,
            ),
            id="unknown-phase",
        ),
        pytest.param(
            {"run": "3", "trigger": {"generation": "5"}, "phase": "Failed"},
            RunState(run=3, phase=Phase.FAILED, trigger=Trigger(5, "", "")),
            id="numbers-as-strings",
        ),
    ],
)
def test_run_state_from_status(status: dict[str, Any] | None, expected: RunState) -> None:
    assert RunState.from_status(status) == expected


@pytest.mark.parametrize(
    ("phase", "in_flight"),
    [
        (None, False),
        (Phase.PENDING, True),
        (Phase.DEPLOYING, True),
        (Phase.VERIFYING, True),
        (Phase.SUCCEEDED, False),
        (Phase.FAILED, False),
        (Phase.CANCELED, False),
    ],
)
def test_in_flight(phase: Phase | None, in_flight: bool) -> None:
    assert RunState(run=1, phase=phase).in_flight is in_flight


def test_trigger_round_trip() -> None:
    trigger = Trigger(12, "2025-03-02T10:58:00Z", "stop-2")
    assert trigger.as_status() == {
        "generation": 12,
        "redeploy": "2025-03-02T10:58:00Z",
        "cancel": "stop-2",
    }
    assert Trigger.from_status(trigger.as_status()) == trigger


# --- decide -----------------------------------------------------------------------------------


def state(phase: Phase | None, run: int = 3, **trigger: Any) -> RunState:
    """A run with trigger generation 5, no redeploy and no cancel unless overridden."""
    fields = {"generation": 5, "redeploy": "", "cancel": "", **trigger}
    return RunState(run=run, phase=phase, trigger=Trigger(**fields))


SAME = Trigger(5, "", "")

DECIDE_CASES = [
    # Deleting beats everything.
    pytest.param(state(Phase.DEPLOYING), SAME, True, Action.DELETE, id="deleting-in-flight"),
    pytest.param(state(Phase.SUCCEEDED), SAME, True, Action.DELETE, id="deleting-idle"),
    pytest.param(
        state(Phase.DEPLOYING), Trigger(6, "r", "stop"), True, Action.DELETE, id="deleting-wins"
    ),
    # Cancel annotation.
    pytest.param(
        state(Phase.DEPLOYING), Trigger(5, "", "stop"), False, Action.CANCEL, id="cancel-deploying"
    ),
    pytest.param(
        state(Phase.PENDING), Trigger(5, "", "stop"), False, Action.CANCEL, id="cancel-pending"
    ),
    pytest.param(
        state(Phase.VERIFYING, cancel="stop-1"),
        Trigger(5, "", "stop-2"),
        False,
        Action.CANCEL,
        id="cancel-new-value",
    ),
    pytest.param(
        state(Phase.DEPLOYING, cancel="stop"),
        Trigger(5, "", ""),
        False,
        Action.CANCEL,
        id="cancel-annotation-removed",
    ),
    pytest.param(
        state(Phase.DEPLOYING),
        Trigger(6, "", "stop"),
        False,
        Action.CANCEL,
        id="cancel-wins-over-new-generation",
    ),
    pytest.param(
        state(Phase.DEPLOYING, cancel="stop"),
        Trigger(5, "", "stop"),
        False,
        Action.WATCH,
        id="same-cancel-value-in-flight",
    ),
    pytest.param(
        state(Phase.SUCCEEDED),
        Trigger(5, "", "stop"),
        False,
        Action.IDLE,
        id="cancel-while-idle-does-nothing",
    ),
    # First run.
    pytest.param(RunState(), Trigger(1, "", ""), False, Action.START, id="first-run"),
    pytest.param(
        RunState(), Trigger(1, "", "stop"), False, Action.START, id="first-run-with-cancel-set"
    ),
    pytest.param(
        state(None, run=0), SAME, False, Action.START, id="first-run-trigger-already-equal"
    ),
    # Generation changes.
    pytest.param(state(Phase.DEPLOYING), Trigger(6, "", ""), False, Action.SUPERSEDE, id="gen-dep"),
    pytest.param(state(Phase.PENDING), Trigger(6, "", ""), False, Action.SUPERSEDE, id="gen-pend"),
    pytest.param(state(Phase.VERIFYING), Trigger(6, "", ""), False, Action.SUPERSEDE, id="gen-ver"),
    pytest.param(state(Phase.SUCCEEDED), Trigger(6, "", ""), False, Action.START, id="gen-ok"),
    pytest.param(state(Phase.FAILED), Trigger(6, "", ""), False, Action.START, id="gen-failed"),
    pytest.param(state(Phase.CANCELED), Trigger(6, "", ""), False, Action.START, id="gen-canceled"),
    pytest.param(state(None), Trigger(6, "", ""), False, Action.START, id="gen-unknown-phase"),
    # Redeploy token.
    pytest.param(
        state(Phase.DEPLOYING),
        Trigger(5, "2025-03-02T11:00:00Z", ""),
        False,
        Action.SUPERSEDE,
        id="redeploy-in-flight",
    ),
    pytest.param(
        state(Phase.SUCCEEDED, redeploy="a"),
        Trigger(5, "b", ""),
        False,
        Action.START,
        id="redeploy-idle",
    ),
    pytest.param(
        state(Phase.FAILED, redeploy="a"),
        Trigger(5, "", ""),
        False,
        Action.START,
        id="redeploy-token-removed",
    ),
    # Nothing changed.
    pytest.param(state(Phase.DEPLOYING), SAME, False, Action.WATCH, id="watch-deploying"),
    pytest.param(state(Phase.VERIFYING), SAME, False, Action.WATCH, id="watch-verifying"),
    pytest.param(state(Phase.SUCCEEDED), SAME, False, Action.IDLE, id="idle-succeeded"),
    pytest.param(state(Phase.FAILED), SAME, False, Action.IDLE, id="idle-failed"),
    pytest.param(state(Phase.CANCELED), SAME, False, Action.IDLE, id="idle-canceled"),
    pytest.param(state(None), SAME, False, Action.IDLE, id="idle-unknown-phase"),
]


@pytest.mark.parametrize(("current", "desired", "deleting", "action"), DECIDE_CASES)
def test_decide(current: RunState, desired: Trigger, deleting: bool, action: Action) -> None:
    assert decide(current, desired, deleting) == action


# --- start / finish ---------------------------------------------------------------------------

FINISHED = RunState(
    run=4,
    phase=Phase.FAILED,
    trigger=Trigger(7, "", ""),
    started_at=T0,
    finished_at=T1,
    reason="ProgressDeadlineExceeded",
    message="Deployment web: progress deadline exceeded",
    revision="sha256:0000aaaa1111bbbb",
)


@pytest.mark.parametrize(
    ("before", "expected_run"),
    [pytest.param(RunState(), 1, id="first"), pytest.param(FINISHED, 5, id="after-a-failure")],
)
def test_start_begins_a_fresh_run(before: RunState, expected_run: int) -> None:
    desired = Trigger(8, "2025-03-02T11:09:00Z", "stop-1")
    assert start(before, desired, T2, REVISION) == RunState(
        run=expected_run,
        phase=Phase.DEPLOYING,
        trigger=desired,
        started_at=T2,
        finished_at="",
        reason="Deploying",
        message="applying the manifests",
        revision=REVISION,
    )


def test_finish_keeps_identity_and_records_the_end() -> None:
    running = start(RunState(run=2), Trigger(3, "", ""), T0, REVISION)
    done = finish(running, Phase.SUCCEEDED, "RolloutComplete", "all 3 objects rolled out", T1)
    assert done == RunState(
        run=3,
        phase=Phase.SUCCEEDED,
        trigger=Trigger(3, "", ""),
        started_at=T0,
        finished_at=T1,
        reason="RolloutComplete",
        message="all 3 objects rolled out",
        revision=REVISION,
    )
    assert running.phase == Phase.DEPLOYING  # frozen: the input is untouched


# --- judge ------------------------------------------------------------------------------------

WEB = "Deployment web in namespace shop"
DB = "StatefulSet db in namespace shop"
SETTINGS = "ConfigMap settings in namespace shop"
READER = "ClusterRole reader"

WEB_CURRENT = Health(Status.CURRENT, "Deployment web: 3 replicas updated and available")
WEB_ROLLING = Health(Status.IN_PROGRESS, "Deployment web: 2/3 replicas updated")
WEB_DEADLINE = Health(
    Status.FAILED,
    'Deployment web: progress deadline exceeded: ReplicaSet "web-7d9f8b6c5d" has timed out',
    "ProgressDeadlineExceeded",
)
DB_CURRENT = Health(Status.CURRENT, "StatefulSet db: 3 pods updated and ready")
DB_ROLLING = Health(Status.IN_PROGRESS, "StatefulSet db: 1/3 pods updated")
SETTINGS_CURRENT = Health(Status.CURRENT, "ConfigMap settings: has no status to wait for")
SETTINGS_MISSING = Health(Status.NOT_FOUND, "The object does not exist")
READER_CURRENT = Health(Status.CURRENT, "ClusterRole reader: has no status to wait for")


def crash_loop(pod: str, restarts: int) -> tuple[str, str]:
    return "CrashLoopBackOff", PodProblem(
        pod=pod,
        container="app",
        reason="CrashLoopBackOff",
        message=f"back-off 2m40s restarting failed container=app pod={pod}_shop(3e2d1c0b)",
        exit_code=1,
        restart_count=restarts,
    ).sentence()


def pod_sentence(reason: str, message: str = "", exit_code: int | None = None) -> tuple[str, str]:
    return reason, PodProblem(
        "web-5c4b7d9f86-r2n7d", "app", reason, message, exit_code, 0
    ).sentence()


CRASH_1 = crash_loop("web-5c4b7d9f86-q8zlm", 5)
CRASH_2 = crash_loop("web-5c4b7d9f86-r2n7d", 4)
CRASH_3 = crash_loop("web-5c4b7d9f86-t6v9w", 3)

JUDGE_CASES = [
    pytest.param(
        [(READER, Health(Status.FAILED, "ClusterRole reader: rejected", "Forbidden"))],
        [],
        Verdict(Outcome.FAILED, "Forbidden", "ClusterRole reader: rejected"),
        id="failed-already-named",
    ),
    pytest.param(
        [(WEB, WEB_ROLLING), (SETTINGS, Health(Status.FAILED, "lost", ""))],
        [],
        Verdict(Outcome.FAILED, "Failed", f"{SETTINGS}: lost"),
        id="failed-without-reason-named-by-caller",
    ),
    pytest.param(
        [(DB, DB_CURRENT), (SETTINGS, Health(Status.FAILED, "", "ClaimLost"))],
        [],
        Verdict(Outcome.FAILED, "ClaimLost", f"{SETTINGS}: Failed"),
        id="failed-without-message",
    ),
    pytest.param(
        [(WEB, WEB_CURRENT), (DB, DB_CURRENT)],
        [CRASH_1],
        Verdict(Outcome.FAILED, "CrashLoopBackOff", CRASH_1[1]),
        id="pod-crash-loop",
    ),
    pytest.param(
        [(WEB, WEB_ROLLING)],
        [CRASH_1, CRASH_2],
        Verdict(Outcome.FAILED, "CrashLoopBackOff", f"{CRASH_1[1]} (and 1 more)"),
        id="pod-crash-loop-two",
    ),
    pytest.param(
        [(WEB, WEB_ROLLING)],
        [CRASH_1, CRASH_2, CRASH_3],
        Verdict(Outcome.FAILED, "CrashLoopBackOff", f"{CRASH_1[1]} (and 2 more)"),
        id="pod-crash-loop-three",
    ),
    pytest.param(
        [],
        [pod_sentence("ErrImagePull", "rpc error: code = NotFound")],
        Verdict(
            Outcome.FAILED,
            "ErrImagePull",
            "pod web-5c4b7d9f86-r2n7d container app is in ErrImagePull: rpc error: code = NotFound",
        ),
        id="pod-err-image-pull",
    ),
    pytest.param(
        [],
        [pod_sentence("ImagePullBackOff", 'Back-off pulling image "shop/web:1.4.3"')],
        Verdict(
            Outcome.FAILED,
            "ImagePullBackOff",
            "pod web-5c4b7d9f86-r2n7d container app is in ImagePullBackOff: "
            'Back-off pulling image "shop/web:1.4.3"',
        ),
        id="pod-image-pull-backoff",
    ),
    pytest.param(
        [],
        [pod_sentence("CreateContainerConfigError", 'secret "db-password" not found')],
        Verdict(
            Outcome.FAILED,
            "CreateContainerConfigError",
            "pod web-5c4b7d9f86-r2n7d container app is in CreateContainerConfigError: "
            'secret "db-password" not found',
        ),
        id="pod-config-error",
    ),
    pytest.param(
        [],
        [pod_sentence("OOMKilled", exit_code=137)],
        Verdict(
            Outcome.FAILED,
            "OOMKilled",
            "pod web-5c4b7d9f86-r2n7d container app is in OOMKilled (exit code 137)",
        ),
        id="pod-other-reason",
    ),
    pytest.param(
        [(WEB, WEB_CURRENT), (DB, DB_CURRENT), (READER, READER_CURRENT)],
        [],
        Verdict(Outcome.HEALTHY, "RolloutComplete", "all 3 objects are ready"),
        id="all-current",
    ),
    pytest.param(
        [],
        [],
        Verdict(Outcome.HEALTHY, "RolloutComplete", "all 0 objects are ready"),
        id="nothing-to-wait-for",
    ),
    pytest.param(
        [(READER, READER_CURRENT), (SETTINGS, SETTINGS_MISSING)],
        [],
        Verdict(Outcome.PROGRESSING, "Progressing", f"{SETTINGS}: The object does not exist"),
        id="progressing-names-the-pending-object",
    ),
    pytest.param(
        [(READER, Health(Status.TERMINATING, "ClusterRole reader is being deleted"))],
        [],
        Verdict(Outcome.PROGRESSING, "Progressing", "ClusterRole reader is being deleted"),
        id="terminating-is-pending",
    ),
    pytest.param(
        [(SETTINGS, Health(Status.IN_PROGRESS, ""))],
        [],
        Verdict(Outcome.PROGRESSING, "Progressing", f"{SETTINGS}: InProgress"),
        id="pending-without-message",
    ),
]


@pytest.mark.parametrize(("healths", "pod_failures", "verdict"), JUDGE_CASES)
def test_judge(
    healths: list[tuple[str, Health]], pod_failures: list[tuple[str, str]], verdict: Verdict
) -> None:
    assert judge(healths, pod_failures, elapsed=30.0, max_wait=600.0) == verdict


def test_judge_failed_health_names_the_object_and_wins() -> None:
    verdict = judge(
        [(DB, DB_ROLLING), (WEB, WEB_DEADLINE)], [CRASH_1], elapsed=900.0, max_wait=600.0
    )
    assert (verdict.outcome, verdict.reason) == (Outcome.FAILED, "ProgressDeadlineExceeded")
    assert verdict.message.startswith("Deployment web: progress deadline exceeded")
    assert verdict.message.endswith("has timed out"), verdict.message


def test_judge_names_a_namespaced_object_once() -> None:
    verdict = judge([(WEB, WEB_DEADLINE)], [], elapsed=30.0, max_wait=600.0)
    assert verdict.message.count("Deployment web") == 1, verdict.message


@pytest.mark.parametrize(
    ("healths", "elapsed", "verdict"),
    [
        pytest.param(
            [(READER, READER_CURRENT), (SETTINGS, SETTINGS_MISSING), (DB, DB_ROLLING)],
            600.0,
            Verdict(
                Outcome.FAILED,
                "MaxWaitExceeded",
                f"not ready after maxWaitSeconds=600: {SETTINGS}: The object does not exist",
            ),
            id="exactly-at-max-wait",
        ),
        pytest.param(
            [(READER, Health(Status.IN_PROGRESS, "ClusterRole reader: aggregating"))],
            4000.0,
            Verdict(
                Outcome.FAILED,
                "MaxWaitExceeded",
                "not ready after maxWaitSeconds=600: ClusterRole reader: aggregating",
            ),
            id="long-past-max-wait",
        ),
        pytest.param(
            [(READER, Health(Status.IN_PROGRESS, "ClusterRole reader: aggregating"))],
            599.9,
            Verdict(Outcome.PROGRESSING, "Progressing", "ClusterRole reader: aggregating"),
            id="just-before-max-wait",
        ),
        pytest.param(
            [(READER, READER_CURRENT), (SETTINGS, SETTINGS_CURRENT)],
            4000.0,
            Verdict(Outcome.HEALTHY, "RolloutComplete", "all 2 objects are ready"),
            id="ready-late-is-still-healthy",
        ),
    ],
)
def test_judge_max_wait(
    healths: list[tuple[str, Health]], elapsed: float, verdict: Verdict
) -> None:
    assert judge(healths, [], elapsed=elapsed, max_wait=600.0) == verdict


# --- conditions -------------------------------------------------------------------------------


def run_in(phase: Phase | None, reason: str, message: str) -> RunState:
    return RunState(run=2 if phase else 0, phase=phase, reason=reason, message=message)


# (phase, reason, message) → (Ready, Reconciling, Stalled) as (status, reason, message) each.
CONDITION_CASES = [
    pytest.param(
        run_in(None, "", ""),
        [("False", "NoRun", ""), ("False", "Idle", ""), ("False", "NotStalled", "")],
        id="no-run",
    ),
    pytest.param(
        run_in(Phase.PENDING, "Pending", "waiting"),
        [
            ("False", "Pending", "waiting"),
            ("True", "Pending", "waiting"),
            ("False", "NotStalled", ""),
        ],
        id="pending",
    ),
    pytest.param(
        run_in(Phase.DEPLOYING, "Progressing", "Deployment web: 2/3 replicas updated"),
        [
            ("False", "Progressing", "Deployment web: 2/3 replicas updated"),
            ("True", "Progressing", "Deployment web: 2/3 replicas updated"),
            ("False", "NotStalled", ""),
        ],
        id="deploying",
    ),
    pytest.param(
        run_in(Phase.VERIFYING, "Verifying", "rolled out; must stay healthy for 60s"),
        [
            ("False", "Verifying", "rolled out; must stay healthy for 60s"),
            ("True", "Verifying", "rolled out; must stay healthy for 60s"),
            ("False", "NotStalled", ""),
        ],
        id="verifying",
    ),
    pytest.param(
        run_in(Phase.SUCCEEDED, "RolloutComplete", "all 3 objects rolled out in 41s"),
        [
            ("True", "RolloutComplete", "all 3 objects rolled out in 41s"),
            ("False", "Idle", ""),
            ("False", "NotStalled", ""),
        ],
        id="succeeded",
    ),
    pytest.param(
        run_in(Phase.FAILED, "MaxWaitExceeded", "not ready after maxWaitSeconds=600"),
        [
            ("False", "MaxWaitExceeded", "not ready after maxWaitSeconds=600"),
            ("False", "Idle", ""),
            ("True", "MaxWaitExceeded", "not ready after maxWaitSeconds=600"),
        ],
        id="failed",
    ),
    pytest.param(
        run_in(Phase.CANCELED, "Superseded", "superseded by a new run for generation 8"),
        [
            ("False", "Superseded", "superseded by a new run for generation 8"),
            ("False", "Idle", ""),
            ("False", "NotStalled", ""),
        ],
        id="canceled",
    ),
    pytest.param(
        run_in(Phase.SUCCEEDED, "", ""),
        [("True", "Ready", ""), ("False", "Idle", ""), ("False", "NotStalled", "")],
        id="empty-reason-falls-back-to-type",
    ),
]


@pytest.mark.parametrize(("run_state", "expected"), CONDITION_CASES)
def test_conditions_per_phase(run_state: RunState, expected: list[tuple[str, str, str]]) -> None:
    got = conditions(run_state, generation=8, now=T1)
    assert got == [
        {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": 8,
            "lastTransitionTime": T1,
        }
        for type_, (status, reason, message) in zip(
            ("Ready", "Reconciling", "Stalled"), expected, strict=True
        )
    ]


def test_conditions_truncate_the_message() -> None:
    got = conditions(run_in(Phase.FAILED, "Failed", "x" * 1500), generation=1, now=T1)
    assert [len(c["message"]) for c in got] == [1000, 0, 1000]


def test_conditions_keep_the_transition_time_only_when_the_status_did_not_change() -> None:
    deploying = run_in(Phase.DEPLOYING, "Progressing", "Deployment web: 2/3 replicas updated")
    first = conditions(deploying, generation=8, now=T0)
    # A later write during the same phase keeps every transition time.
    again = conditions(deploying, generation=8, now=T1, previous=first)
    assert [c["lastTransitionTime"] for c in again] == [T0, T0, T0]
    # Success flips Ready and Reconciling; Stalled stays False.
    done = run_in(Phase.SUCCEEDED, "RolloutComplete", "all 3 objects rolled out in 41s")
    after = conditions(done, generation=8, now=T2, previous=again)
    assert [(c["type"], c["status"], c["lastTransitionTime"]) for c in after] == [
        ("Ready", "True", T2),
        ("Reconciling", "False", T2),
        ("Stalled", "False", T0),
    ]


def test_conditions_without_a_previous_transition_time_use_now() -> None:
    previous = [{"type": "Ready", "status": "False", "reason": "NoRun", "message": ""}]
    got = conditions(run_in(None, "", ""), generation=1, now=T1, previous=previous)
    assert got[0]["lastTransitionTime"] == T1


def test_notifications_delivered_can_be_unknown_and_flips_with_its_status() -> None:
    done = run_in(Phase.SUCCEEDED, "RolloutComplete", "all 3 objects rolled out in 41s")
    waiting = (None, "NotificationMissing", "waiting for Notification later")
    first = conditions(done, generation=2, now=T0, delivered=waiting)
    assert first[-1] == {
        "type": "NotificationsDelivered",
        "status": "Unknown",
        "reason": "NotificationMissing",
        "message": "waiting for Notification later",
        "observedGeneration": 2,
        "lastTransitionTime": T0,
    }
    same = conditions(done, generation=2, now=T1, previous=first, delivered=waiting)
    assert same[-1]["lastTransitionTime"] == T0
    sent = (True, "Delivered", "every message of the latest run was delivered")
    after = conditions(done, generation=2, now=T2, previous=same, delivered=sent)
    assert (after[-1]["status"], after[-1]["lastTransitionTime"]) == ("True", T2)


# --- push_history -----------------------------------------------------------------------------


def entry(run: int, phase: str) -> dict[str, Any]:
    return {
        "run": run,
        "phase": phase,
        "reason": "RolloutComplete" if phase == "Succeeded" else "Deploying",
        "message": f"run {run}",
        "startedAt": T0,
        "finishedAt": T1 if phase == "Succeeded" else "",
        "revision": REVISION,
    }


def finished_run(run: int, message: str = "") -> RunState:
    return RunState(
        run=run,
        phase=Phase.SUCCEEDED,
        started_at=T0,
        finished_at=T1,
        reason="RolloutComplete",
        message=message or f"run {run}",
        revision=REVISION,
    )


@pytest.mark.parametrize(
    ("history", "run", "limit", "runs"),
    [
        pytest.param([], 1, 10, [1], id="first"),
        pytest.param([entry(2, "Succeeded"), entry(1, "Succeeded")], 3, 10, [3, 2, 1], id="newest"),
        pytest.param(
            [entry(3, "Deploying"), entry(2, "Succeeded"), entry(1, "Succeeded")],
            3,
            10,
            [3, 2, 1],
            id="same-run-replaced",
        ),
        pytest.param(
            [entry(2, "Succeeded"), entry(3, "Deploying"), entry(1, "Succeeded")],
            3,
            10,
            [3, 2, 1],
            id="same-run-anywhere-replaced",
        ),
        pytest.param(
            [entry(4, "Succeeded"), entry(3, "Succeeded"), entry(2, "Succeeded")],
            5,
            3,
            [5, 4, 3],
            id="limit",
        ),
        pytest.param([entry(1, "Succeeded")], 2, 1, [2], id="limit-one"),
    ],
)
def test_push_history(history: list[dict[str, Any]], run: int, limit: int, runs: list[int]) -> None:
    before = copy.deepcopy(history)
    got = push_history(history, finished_run(run), limit)
    assert [h["run"] for h in got] == runs
    assert got[0] == entry(run, "Succeeded")
    assert [h["phase"] for h in got].count("Deploying") == 0
    assert history == before


def test_history_entry_truncates_and_handles_no_phase() -> None:
    got = push_history([], RunState(run=1, message="y" * 800), 5)
    assert got == [
        {
            "run": 1,
            "phase": "",
            "reason": "",
            "message": "y" * 500,
            "startedAt": "",
            "finishedAt": "",
            "revision": "",
        }
    ]


def test_the_runs_source_survives_status_and_history() -> None:
    """A restarted operator reads back the source the run began with (its messages say it)."""
    source = Source("https://github.com/acme/web", "4f2c9e1d8a7b", "production")
    began = start(RunState(), Trigger(1, "", ""), T0, REVISION, source)
    written = JobStatus(state=began).full(generation=1)
    assert written["source"] == {
        "repository": "https://github.com/acme/web",
        "revision": "4f2c9e1d8a7b",
        "environment": "production",
        "committedAt": None,  # a merge patch removes what an earlier run had set
        "url": None,
        "pullRequest": None,
    }
    stored = {k: v for k, v in written.items() if v is not None}
    stored["source"] = {k: v for k, v in written["source"].items() if v is not None}
    assert RunState.from_status(stored).source == source
    (entry,) = push_history([], began, 5)
    assert Source.from_status(entry["source"]) == source
    assert "source" not in push_history([], RunState(run=1), 5)[0]  # none recorded: none said


def test_the_runs_pull_request_survives_status_and_history() -> None:
    """The pull request a comment type writes on is read back by a restarted operator."""
    source = Source("https://github.com/acme/web", "4f2c9e1d8a7b", "production", pull_request=42)
    began = start(RunState(), Trigger(1, "", ""), T0, REVISION, source)
    written = JobStatus(state=began).full(generation=1)
    assert written["source"]["pullRequest"] == 42
    stored = {k: v for k, v in written.items() if v is not None}
    stored["source"] = {k: v for k, v in written["source"].items() if v is not None}
    assert RunState.from_status(stored).source == source
    (entry,) = push_history([], began, 5)
    assert entry["source"]["pullRequest"] == 42
    assert Source.from_status(entry["source"]) == source


def test_a_run_recorded_by_an_older_version_takes_its_source_from_the_same_generation() -> None:
    """A status from before runs recorded their source: the spec tells it while it is still the
    run's (same generation); after a change it is unknown, never the new spec's."""
    spec = {
        "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}],
        "source": {"revision": "4f2c9e1d8a7b", "repository": "https://github.com/acme/web"},
    }
    old = {"run": 2, "phase": "Succeeded", "trigger": {"generation": 3}}

    def live(generation: int) -> LiveJob:
        return LiveJob("team-a", "web", "uid", generation, {}, spec, old, False)

    state = RunState.from_status(old)
    assert state.source is None
    assert legacy_source(state, live(3)).source == Source(
        "https://github.com/acme/web", "4f2c9e1d8a7b", "team-a"
    )
    assert legacy_source(state, live(4)).source is None
