"""The message: one typed model per run event, rendered by every provider its own way (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

EVENT_VERBS = {
    "start": "started",
    "success": "succeeded",
    "failure": "failed",
    "cancel": "was canceled",
}
EVENT_SYMBOLS = {"start": "▶", "success": "✔", "failure": "✖", "cancel": "■"}
# Hex colours shared by the providers that take one (Slack attachments, e-mail HTML).
EVENT_COLOURS = {
    "start": "#2f80ed",
    "success": "#2eb67d",
    "failure": "#e01e5a",
    "cancel": "#9e9e9e",
}


DETAIL_CHARS = 300  # a pod's message or a Warning's text: the gist, not a stack trace


def clip(text: str, limit: int, marker: str = "…") -> str:
    """`text` cut to at most `limit` characters, the cut shown by `marker`."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(marker), 0)].rstrip() + marker


@dataclass(frozen=True)
class ObjectStatus:
    """One applied object and how it ended up."""

    kind: str
    name: str
    namespace: str
    status: str
    message: str = ""

    def line(self) -> str:
        """`Deployment team-a/web: Current — 2 of 2 updated replicas are available`."""
        said = f" — {self.message}" if self.message else ""
        return f"{self.kind} {self.namespace}/{self.name}: {self.status}{said}"


@dataclass(frozen=True)
class PodDiagnosis:
    """A failing container: the evidence a human needs to fix the deploy."""

    pod: str
    container: str
    reason: str
    message: str = ""
    exit_code: int | None = None
    restart_count: int = 0

    def facts(self) -> str:
        """`CrashLoopBackOff, exit code 1, 5 restarts`."""
        facts = [self.reason or "not ready"]
        if self.exit_code is not None:
            facts.append(f"exit code {self.exit_code}")
        if self.restart_count:
            facts.append(f"{self.restart_count} restart{'s' if self.restart_count != 1 else ''}")
        return ", ".join(facts)

    def line(self, detail_chars: int = DETAIL_CHARS) -> str:
        """`pod web-7d9f8 container app: CrashLoopBackOff, exit code 1, 5 restarts — back-off…`:
        how every provider names a failing container."""
        said = f" — {clip(self.message, detail_chars)}" if self.message else ""
        return f"pod {self.pod} container {self.container}: {self.facts()}{said}"


@dataclass(frozen=True)
class WarningEvent:
    """A recent Warning Event of a failing object."""

    object: str  # "Deployment web"
    reason: str
    message: str
    count: int = 1

    def line(self, detail_chars: int = DETAIL_CHARS) -> str:
        """`Pod web-7d9f8 BackOff (7 times): Back-off restarting failed container app`."""
        times = f" ({self.count} times)" if self.count > 1 else ""
        return f"{self.object} {self.reason}{times}: {clip(self.message, detail_chars)}"


class Listing(NamedTuple):
    """One list of a rich message: its heading, one line per item, and how many more items there
    are than the message holds (`Message.pods_omitted`), for the "… and N more" line."""

    heading: str
    lines: list[str]
    omitted: int = 0


@dataclass(frozen=True)
class Message:
    """Everything a notification says about one event of one run."""

    job: str
    namespace: str
    run: int
    event: str  # start | success | failure | cancel
    phase: str
    reason: str
    message: str
    started_at: str = ""
    finished_at: str = ""
    verifying_at: str = ""  # when the run's stability window (Verifying) began, if it had one
    duration_seconds: float | None = None
    revision: str = ""
    images: tuple[str, ...] = ()
    objects: tuple[ObjectStatus, ...] = ()
    cluster: str = ""
    link: str = ""
    pods: tuple[PodDiagnosis, ...] = ()
    pods_omitted: int = 0  # failing containers found beyond `pods` (status keeps the first few)
    warnings: tuple[WarningEvent, ...] = ()
    rolled_back_to: int | None = None
    idempotency_key: str = ""
    environment: str = ""  # spec.source: where, and which commit of which repository
    commit: str = ""
    repository: str = ""
    change_url: str = ""
    committed_at: str = ""
    pull_request: int = 0  # spec.source.pullRequest (or the number in its url); 0: none
    test: bool = False  # a `deploybell notify-test` message, labelled as such everywhere
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def verb(self) -> str:
        return EVENT_VERBS.get(self.event, self.event)

    @property
    def symbol(self) -> str:
        return EVENT_SYMBOLS.get(self.event, "•")

    @property
    def colour(self) -> str:
        return EVENT_COLOURS.get(self.event, "#9e9e9e")

    @property
    def ref(self) -> str:
        """`team-a/web`: how a job is named in every message."""
        return f"{self.namespace}/{self.job}"

    def title(self) -> str:
        """One line: `✔ team-a/web succeeded (run 3)`; a test message says so first."""
        prefix = "[test] " if self.test else ""
        where = f" on {self.cluster}" if self.cluster else ""
        return f"{prefix}{self.symbol} {self.ref} {self.verb}{where} (run {self.run})"

    def duration(self) -> str:
        if self.duration_seconds is None:
            return ""
        seconds = round(self.duration_seconds)
        minutes, seconds = divmod(seconds, 60)
        return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"

    def summary(self) -> str:
        """The human sentence under the title: the reason and what happened."""
        if self.event == "start":
            images = ", ".join(self.images[:3]) + (" …" if len(self.images) > 3 else "")
            return f"deploying {images}" if images else "deploying"
        took = f" after {self.duration()}" if self.duration() else ""
        return f"{self.reason}{took}: {self.message}" if self.message else f"{self.reason}{took}"

    def facts(self) -> list[tuple[str, str]]:
        """The labelled facts every rich message shows (job, run, cluster, images, ...)."""
        facts = [("Job", self.ref), ("Run", str(self.run)), ("Phase", self.phase)]
        if self.cluster:
            facts.append(("Cluster", self.cluster))
        if self.environment:
            facts.append(("Environment", self.environment))
        if self.commit:
            where = f" in {self.repository}" if self.repository else ""
            facts.append(("Commit", f"{self.commit[:12]}{where}"))
        if self.change_url:
            facts.append(("Change", self.change_url))
        if self.duration():
            facts.append(("Duration", self.duration()))
        if self.rolled_back_to is not None:
            facts.append(("Rolled back to", f"run {self.rolled_back_to}"))
        if self.images:
            facts.append(("Images", "\n".join(self.images)))
        if self.revision:
            facts.append(("Revision", self.revision))
        return facts

    @property
    def failing_containers(self) -> int:
        """How many containers the run found failing (more than `pods` may hold)."""
        return len(self.pods) + self.pods_omitted

    def lists(self) -> list[Listing]:
        """The lists a rich message shows under its facts, by heading, each item one line."""
        return [
            Listing("Objects", [o.line() for o in self.objects]),
            Listing("Failing pods", [p.line() for p in self.pods], self.pods_omitted),
            Listing("Recent warnings", [w.line() for w in self.warnings]),
        ]

    def footer(self, times: bool = True) -> str:
        """`deploybell · started … · finished …`: the small print under a rich message (without
        the times where the destination shows the message's time itself)."""
        parts = ["deploybell"]
        if self.test:
            parts.append("test message")
        if times and self.started_at:
            parts.append(f"started {self.started_at}")
        if times and self.finished_at:
            parts.append(f"finished {self.finished_at}")
        return " · ".join(parts)

    def as_data(self) -> dict[str, Any]:
        """A JSON-ready dict (webhook bodies, template contexts); built, never string-templated."""
        data = asdict(self)
        data["images"] = list(self.images)
        data["title"] = self.title()
        data["summary"] = self.summary()
        data["extra"] = dict(self.extra)
        return data


SAMPLE_PHASES = {
    "start": "Deploying",
    "success": "Succeeded",
    "failure": "Failed",
    "cancel": "Canceled",
}


def sample(event: str = "failure") -> Message:
    """A realistic message for previews (`deploybell render`) and provider tests."""
    failed = event == "failure"
    return Message(
        job="web",
        namespace="team-a",
        run=3,
        event=event,
        phase=SAMPLE_PHASES.get(event, "Deploying"),
        reason={
            "start": "Deploying",
            "success": "RolloutComplete",
            "failure": "CrashLoopBackOff",
            "cancel": "Canceled",
        }.get(event, ""),
        message=(
            "pod web-7d9f8-x2kqp container app is in CrashLoopBackOff (exit code 1, 5 restarts)"
            if failed
            else "all 2 objects rolled out"
            if event == "success"
            else ""
        ),
        started_at="2026-11-27T10:00:00Z",
        finished_at="" if event == "start" else "2026-11-27T10:01:05Z",
        verifying_at="2026-11-27T10:00:35Z" if event == "success" else "",
        duration_seconds=None if event == "start" else 65.0,
        revision="sha256:0123456789abcdef",
        images=("registry.example/web:1.4.3",),
        objects=(
            ObjectStatus("Deployment", "web", "team-a", "Failed" if failed else "Current"),
            ObjectStatus("Service", "web", "team-a", "Current"),
        ),
        cluster="prod-eu",
        link="https://dashboard.example/team-a/web",
        environment="production",
        commit="4f2c9e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
        repository="https://github.com/acme/web",
        change_url="https://github.com/acme/web/pull/42",
        committed_at="2026-11-27T09:40:00Z",
        pull_request=42,
        pods=(
            PodDiagnosis(
                "web-7d9f8-x2kqp",
                "app",
                "CrashLoopBackOff",
                "back-off 40s restarting failed container",
                1,
                5,
            ),
        )
        if failed
        else (),
        warnings=(
            WarningEvent(
                "Pod web-7d9f8-x2kqp", "BackOff", "Back-off restarting failed container app", 7
            ),
        )
        if failed
        else (),
        idempotency_key=f"3/{event}/deploy-notification/#deploys",
    )
