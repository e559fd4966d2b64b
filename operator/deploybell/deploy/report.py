"""What a run tells people: the message model for a ledger entry, the diagnosis (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deploybell.api.deployjob import Source, environment_of
from deploybell.deploy.health import PodProblem
from deploybell.deploy.run import RunState
from deploybell.notify.ledger import Delivery
from deploybell.notify.model import Message, ObjectStatus, PodDiagnosis, WarningEvent

MAX_PODS = 5
MAX_WARNINGS = 5
MAX_IMAGES = 20


@dataclass(frozen=True)
class Presentation:
    """Operator-wide message settings: which cluster this is, and a link per job."""

    cluster: str = ""
    link_template: str = ""  # e.g. https://dash.example/{namespace}/{job}?run={run}

    def link(self, namespace: str, job: str, run: int, cluster: str = "") -> str:
        if not self.link_template:
            return ""
        try:
            return self.link_template.format(
                namespace=namespace, job=job, run=run, cluster=cluster or self.cluster
            )
        except (KeyError, IndexError, ValueError):
            return ""


def images_of(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Container images the objects deploy, in order, each once."""
    seen: dict[str, None] = {}
    for obj in objects:
        spec = obj.get("spec") or {}
        pod = ((spec.get("template") or {}).get("spec") or {}) if "template" in spec else spec
        if obj.get("kind") == "CronJob":
            job = (spec.get("jobTemplate") or {}).get("spec") or {}
            pod = (job.get("template") or {}).get("spec") or {}
        for key in ("initContainers", "containers"):
            for container in pod.get(key) or []:
                if isinstance(container, Mapping) and container.get("image"):
                    seen[str(container["image"])] = None
    return list(seen)[:MAX_IMAGES]


def diagnosis(problems: Sequence[PodProblem], warnings: Sequence[WarningEvent]) -> dict[str, Any]:
    """status.diagnosis: the failing pods and the latest Warning Events, bounded; how many
    failing containers the bound left out (every message says "… and N more")."""
    omitted = {"podsOmitted": len(problems) - MAX_PODS} if len(problems) > MAX_PODS else {}
    return {
        "pods": [
            {
                "pod": p.pod,
                "container": p.container,
                "reason": p.reason,
                "message": p.message[:300],
                "exitCode": p.exit_code,
                "restarts": p.restart_count,
            }
            for p in problems[:MAX_PODS]
        ],
        "warnings": [
            {"object": w.object, "reason": w.reason, "message": w.message[:300], "count": w.count}
            for w in warnings[:MAX_WARNINGS]
        ],
        **omitted,
    }


def _pods(raw: Mapping[str, Any]) -> tuple[PodDiagnosis, ...]:
    return tuple(
        PodDiagnosis(
            str(p.get("pod", "")),
            str(p.get("container", "")),
            str(p.get("reason", "")),
            str(p.get("message", "")),
            p.get("exitCode"),
            int(p.get("restarts") or 0),
        )
        for p in raw.get("pods") or []
    )


def _warnings(raw: Mapping[str, Any]) -> tuple[WarningEvent, ...]:
    return tuple(
        WarningEvent(
            str(w.get("object", "")),
            str(w.get("reason", "")),
            str(w.get("message", "")),
            int(w.get("count") or 1),
        )
        for w in raw.get("warnings") or []
    )


def _seconds(start: str, end: str) -> float | None:
    if not start or not end:
        return None
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    try:
        return (datetime.strptime(end, fmt) - datetime.strptime(start, fmt)).total_seconds()
    except ValueError:
        return None


@dataclass(frozen=True)
class RunFacts:
    """What the runner knows about a job when a message is built."""

    namespace: str
    job: str
    state: RunState
    history: Sequence[Mapping[str, Any]]
    resources: Sequence[Mapping[str, Any]]
    images: Sequence[str]
    diagnosis: Mapping[str, Any]
    rollback: Mapping[str, Any]
    cluster: str = ""  # the target cluster (spec.cluster); "" for the operator's own


def message_for(entry: Mapping[str, Any], facts: RunFacts, presentation: Presentation) -> Message:
    """The message for one ledger entry: the run it belongs to, as it ended (or began).

    Built from status alone (never the spec, which may have changed since the run or not be
    read yet after a restart), so a message is the same whichever process sends it."""
    run = int(entry["run"])
    event = str(entry["event"])
    state = facts.state
    if run == state.run:
        phase, reason, text = (
            (state.phase.value if state.phase else ""),
            state.reason,
            state.message,
        )
        started, finished, revision = state.started_at, state.finished_at, state.revision
        recorded = state.source
        verifying = state.verifying_at
    else:
        past = next((h for h in facts.history if h.get("run") == run), {})
        phase, reason, text = past.get("phase", ""), past.get("reason", ""), past.get("message", "")
        started, finished = past.get("startedAt", ""), past.get("finishedAt", "")
        revision = past.get("revision", "")
        recorded = Source.from_status(past.get("source"))
        verifying = ""  # history keeps no phase times
    if event == "start":
        phase, reason, text, finished, verifying = "Deploying", "Deploying", "", "", ""
    failed = event == "failure" and run == state.run
    source = recorded or Source()
    rolled_back = (
        facts.rollback.get("toRun")
        if failed and facts.rollback.get("phase") == "RolledBack"
        else None
    )
    return Message(
        job=facts.job,
        namespace=facts.namespace,
        run=run,
        event=event,
        phase=str(phase),
        reason=str(reason),
        message=str(text),
        started_at=str(started),
        finished_at=str(finished),
        verifying_at=str(verifying),
        duration_seconds=_seconds(str(started), str(finished)),
        revision=str(revision),
        images=tuple(facts.images),
        objects=tuple(
            ObjectStatus(
                str(r.get("kind")),
                str(r.get("name")),
                str(r.get("namespace") or ""),
                str(r.get("status") or ""),
                str(r.get("message") or ""),
            )
            for r in facts.resources
        ),
        cluster=facts.cluster or presentation.cluster,
        link=presentation.link(facts.namespace, facts.job, run, facts.cluster),
        pods=_pods(facts.diagnosis) if failed else (),
        pods_omitted=int(facts.diagnosis.get("podsOmitted") or 0) if failed else 0,
        warnings=_warnings(facts.diagnosis) if failed else (),
        rolled_back_to=int(rolled_back) if rolled_back else None,
        idempotency_key=f"{facts.namespace}/{facts.job}/{entry['id']}",
        environment=environment_of(recorded, facts.namespace),
        commit=source.revision,
        repository=source.repository,
        change_url=source.url,
        committed_at=source.committed_at,
        pull_request=source.pull_request,
    )


def delivered_condition(
    entries: Sequence[Mapping[str, Any]], run: int
) -> tuple[bool | None, str, str]:
    """(status, reason, message) of NotificationsDelivered for the latest run; None: Unknown.

    A row without recipients waits for its Notification (not found or invalid): Unknown while it
    waits, False once it is given up — never True, which would say all is well. A recipient given
    up makes it False even while other recipients of the row are still being tried.
    """
    latest = [e for e in entries if e.get("run") == run]
    failed = [e for e in latest if e.get("state") == Delivery.FAILED or int(e.get("failed") or 0)]
    if failed:
        first = failed[0]
        count = sum(int(e.get("failed") or 0) or 1 for e in failed)
        more = f" (and {count - 1} more)" if count > 1 else ""
        return (
            False,
            "DeliveryFailed" if "recipients" in first else "NotificationMissing",
            f"{first['event']} via {first['notification']}: {first.get('lastError')}{more}",
        )
    waiting = [e for e in latest if e.get("state") == Delivery.PENDING]
    missing = sorted({str(e["notification"]) for e in waiting if "recipients" not in e})
    if missing:
        names = ", ".join(missing)
        return (
            None,
            "NotificationMissing",
            f"waiting for Notification {names} (not found or invalid): "
            f"{len(waiting)} messages of run {run} wait for it",
        )
    if waiting:
        count = sum(len(e.get("pending") or ()) or 1 for e in waiting)
        return True, "Pending", f"{count} messages waiting to be delivered"
    return True, "Delivered", "every message of the latest run was delivered"
