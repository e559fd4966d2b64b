"""What the record providers (GitHub, GitLab, Grafana, Datadog) share (pure): which run a record
belongs to, the one-line status they show, times in the vendors' units, and the commit and
repository a run deployed (`spec.source`), with the errors that name what is missing.

A record provider keeps the id of what it created at start (a deployment, an annotation) in the
ledger refs of the run's start entry; the outcome updates that record (`Destination.previous`).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

from yarl import URL

from deploybell.notify.model import Message, clip
from deploybell.notify.providers.base import PermanentDeliveryError, Title, headline

# How the outcome of a run reads in a record: the state, not the sentence.
OUTCOME_WORDS = {"success": "succeeded", "failure": "failed", "cancel": "canceled"}
_TIME = "%Y-%m-%dT%H:%M:%SZ"
# The repository part of a pull/merge request link: https://host/acme/web/pull/42 → …/acme/web
# (Gitea: …/pulls/42; GitLab: …/-/merge_requests/42).
_CHANGE_REPOSITORY = re.compile(r"(https://[^\s/]+/\S+?)/(?:pulls?|-/merge_requests)/[0-9]+")


def identity(message: Message) -> dict[str, Any]:
    """The run a record belongs to: stored with it where the vendor keeps data (GitHub's
    deployment payload), so that a record made before a crash is found again, not made twice."""
    return {
        "namespace": message.namespace,
        "job": message.job,
        "run": message.run,
        "startedAt": message.started_at,
        "cluster": message.cluster,
    }


def status_text(message: Message, override: Title | None, limit: int) -> str:
    """`✔ team-a/web succeeded on prod-eu (run 3): RolloutComplete after 1m05s: …`, cut to
    `limit` characters: the title first, so the job, outcome and run always show."""
    title, summary = headline(message, override)
    text = f"{title}: {summary}" if summary else title
    return clip(" ".join(text.split()), limit)


def parse_time(stamp: str) -> datetime | None:
    """A run's `startedAt`/`finishedAt` (`2026-11-27T10:00:00Z`) as an aware datetime."""
    try:
        return datetime.strptime(stamp, _TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def epoch_ms(stamp: str, default: datetime) -> int:
    """Milliseconds since the epoch (Grafana), `default` when the run has no such time."""
    return int((parse_time(stamp) or default).timestamp() * 1000)


def commit(message: Message, kind: str, record: str = "a deployment") -> str:
    """The deployed commit (`spec.source.revision`), or a permanent error saying it is needed
    for the `record` the type makes of it."""
    if message.commit:
        return message.commit
    raise PermanentDeliveryError(
        f"{kind}: the DeployJob {message.ref} has no spec.source.revision: {kind} records "
        f"{record} of a commit, so set spec.source (repository and revision) on the DeployJob"
    )


def repository(message: Message, kind: str, option: str, override: str) -> tuple[str, str]:
    """(host, path) of the repository: the option `override` when set, else the path of
    `spec.source.repository` (`https://host/acme/web.git` → `acme/web`)."""
    if override:
        return "", override
    if not message.repository:
        raise PermanentDeliveryError(
            f"{kind}: the DeployJob {message.ref} has no spec.source.repository and the "
            f"Notification no {kind}.{option}: set one of them"
        )
    url = URL(message.repository)
    path = url.path.strip("/").removesuffix(".git").strip("/")
    if not url.host or "/" not in path:
        raise PermanentDeliveryError(
            f"{kind}: spec.source.repository of {message.ref} names no repository: its path "
            f"must be owner/name, got {path!r}"
        )
    return url.host, path


def with_change_repository(message: Message) -> Message:
    """`message` with `spec.source.repository` taken from its pull/merge request link when the
    DeployJob gives only `spec.source.url` (a comment needs the repository, not a commit)."""
    found = _CHANGE_REPOSITORY.match(message.change_url)
    if message.repository or not found:
        return message
    return dataclasses.replace(message, repository=found.group(1))
