"""`kubectl deploybell status|history`: what they print for real status shapes, and exit codes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from deploybell import kubectl_plugin
from deploybell.tools import status
from deploybell.tools.status import Exit

FAILED: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "team-a"},
    "status": {
        "phase": "Failed",
        "run": 3,
        "reason": "CrashLoopBackOff",
        "message": "pod web-7d9f8-x2kqp container app is in CrashLoopBackOff (exit code 1)",
        "startedAt": "2026-11-27T10:00:00Z",
        "finishedAt": "2026-11-27T10:01:05Z",
        "revision": "sha256:0123456789ab",
        "images": ["registry.example/web:1.4.3"],
        "conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Stalled", "status": "True"},
        ],
        "resources": [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "namespace": "team-a",
                "name": "web",
                "status": "Failed",
                "message": "0 of 2 replicas ready",
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "namespace": "team-a",
                "name": "web",
                "status": "Current",
            },
        ],
        "diagnosis": {
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
            "warnings": [
                {
                    "object": "Pod web-7d9f8-x2kqp",
                    "reason": "BackOff",
                    "message": "Back-off restarting failed container app",
                    "count": 7,
                }
            ],
        },
        "history": [
            {
                "run": 3,
                "phase": "Failed",
                "reason": "CrashLoopBackOff",
                "startedAt": "2026-11-27T10:00:00Z",
                "finishedAt": "2026-11-27T10:01:05Z",
                "message": "pod web-7d9f8-x2kqp ...",
            },
            {
                "run": 2,
                "phase": "Succeeded",
                "reason": "RolloutComplete",
                "startedAt": "2026-11-26T09:00:00Z",
                "finishedAt": "2026-11-26T09:00:40Z",
                "message": "all 2 objects rolled out",
            },
        ],
        "notifications": [
            {
                "run": 3,
                "event": "start",
                "notification": "chat",
                "state": "Sent",
                "attempts": 1,
                "recipients": 2,
                "sent": 2,
                "failed": 0,
                "sentAt": "2026-11-27T10:00:01Z",
            },
            {
                "run": 3,
                "event": "failure",
                "notification": "chat",
                "state": "Failed",
                "attempts": 3,
                "recipients": 2,
                "sent": 1,
                "failed": 1,
                "lastError": "#deploys: slack: chat.postMessage failed: channel_not_found "
                "(HTTP 200)",
            },
            {
                "run": 3,
                "event": "failure",
                "notification": "hook",
                "state": "Pending",
                "attempts": 1,
                "recipients": 1,
                "sent": 0,
                "failed": 0,
                "pending": ["47DEQpj8"],
                "lastError": "webhook: HTTP 503 Service Unavailable",
                "nextAttemptAt": "2026-11-27T10:01:10Z",
            },
            {
                "run": 3,
                "event": "failure",
                "notification": "later",
                "state": "Pending",
                "attempts": 0,
                "lastError": "Notification later not found or invalid in namespace team-a",
            },
        ],
    },
}

FAILED_TEXT = """\
DeployJob team-a/web
Phase:       Failed (run 3)
Reason:      CrashLoopBackOff
Message:     pod web-7d9f8-x2kqp container app is in CrashLoopBackOff (exit code 1)
Started:     2026-11-27T10:00:00Z
Finished:    2026-11-27T10:01:05Z (took 1m05s)
Revision:    sha256:0123456789ab
Images:      registry.example/web:1.4.3
Conditions:  Ready=False Stalled=True

Resources:
  KIND         NAMESPACE   NAME   STATUS    MESSAGE
  Deployment   team-a      web    Failed    0 of 2 replicas ready
  Service      team-a      web    Current

Failing pods:
  POD               CONTAINER   REASON             EXIT   RESTARTS   MESSAGE
  web-7d9f8-x2kqp   app         CrashLoopBackOff   1      5          back-off 40s

Warning events:
  OBJECT                REASON    COUNT   MESSAGE
  Pod web-7d9f8-x2kqp   BackOff   7       Back-off restarting failed container app

Last runs:
  RUN   PHASE       REASON             STARTED                FINISHED               MESSAGE
  3     Failed      CrashLoopBackOff   2026-11-27T10:00:00Z   2026-11-27T10:01:05Z   pod web-7d9f8-x2kqp ...
  2     Succeeded   RolloutComplete    2026-11-26T09:00:00Z   2026-11-26T09:00:40Z   all 2 objects rolled out

Notifications:
  RUN   EVENT     NOTIFICATION   RECIPIENTS                       STATE     ATTEMPTS   DETAIL
  3     start     chat           2                                Sent      1          sent at 2026-11-27T10:00:01Z
  3     failure   chat           1 of 2 sent, 1 failed            Failed    3          #deploys: slack: chat.postMessage failed: channel_not_found (HTTP 200)
  3     failure   hook           0 of 1 sent, 1 pending           Pending   1          retry at 2026-11-27T10:01:10Z: webhook: HTTP 503 Service Unavailable
  3     failure   later          (waiting for the Notification)   Pending   0          Notification later not found or invalid in namespace team-a
"""  # noqa: E501


def with_status(**changes: Any) -> dict[str, Any]:
    job = copy.deepcopy(FAILED)
    job["status"].update(changes)
    return job


def test_status_text_of_a_failed_run() -> None:
    assert status.status_text(FAILED) == FAILED_TEXT


def test_status_text_before_the_operator_saw_the_job() -> None:
    job = {"metadata": {"name": "web", "namespace": "team-a"}}
    assert status.status_text(job) == (
        "DeployJob team-a/web\nPhase:       (no run yet: is the operator running?)\n"
    )


@pytest.mark.parametrize(
    ("phase", "code"),
    [
        ("Succeeded", Exit.OK),
        ("Failed", Exit.FAILED),
        ("Canceled", Exit.FAILED),
        ("Pending", Exit.IN_FLIGHT),
        ("Deploying", Exit.IN_FLIGHT),
        ("Verifying", Exit.IN_FLIGHT),
        (None, Exit.IN_FLIGHT),
    ],
)
def test_exit_code_tells_the_phase(phase: str | None, code: Exit) -> None:
    assert status.exit_code(with_status(phase=phase)) == code


def test_history_lists_a_run_in_flight_first() -> None:
    job = with_status(phase="Deploying", run=4, reason="Deploying", message="", finishedAt=None)
    job["status"]["startedAt"] = "2026-11-28T08:00:00Z"
    assert [(r["run"], r["phase"]) for r in status.runs(job)] == [
        (4, "Deploying"),
        (3, "Failed"),
        (2, "Succeeded"),
    ]
    assert status.history_text(job).splitlines()[1] == (
        "4     Deploying   Deploying          2026-11-28T08:00:00Z"
    )


def test_history_of_a_job_without_runs() -> None:
    assert status.history_text({"metadata": {}}) == "no runs yet\n"


def test_summary_is_the_status_with_the_name() -> None:
    data = status.summary(FAILED)
    assert (data["name"], data["namespace"], data["phase"], data["run"]) == (
        "web",
        "team-a",
        "Failed",
        3,
    )


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        kubectl_plugin.main(["status", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: kubectl deploybell status ")
    assert status.EXIT_CODES_HELP in out


def test_namespace_may_come_before_or_after_the_command() -> None:
    parser = kubectl_plugin.parser()
    assert parser.parse_args(["-n", "a", "status", "web"]).namespace == "a"
    assert parser.parse_args(["status", "web", "-n", "b"]).namespace == "b"
    assert parser.parse_args(["-n", "a", "history", "web", "--namespace", "b"]).namespace == "b"
    assert parser.parse_args(["cancel", "web"]).namespace is None


def test_status_text_names_a_target_cluster() -> None:
    job = {**FAILED, "status": {**FAILED["status"], "cluster": "prod-eu"}}
    lines = status.status_text(job).splitlines()
    assert lines[1:3] == ["Phase:       Failed (run 3)", "Cluster:     prod-eu"]
