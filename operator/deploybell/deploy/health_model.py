"""Verdict types for health evaluation and typed reads from raw API objects (pure)."""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Where an object stands, in kstatus terms."""

    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    NOT_FOUND = "NotFound"


@dataclass(frozen=True)
class Health:
    """The verdict on one object."""

    status: Status
    message: str
    """One human sentence that names the object, e.g. "Deployment web: 2/3 replicas updated"."""
    reason: str = ""
    """CamelCase reason when FAILED or stalled, e.g. "ProgressDeadlineExceeded"; else empty."""


def field_at(raw: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or None when any step is missing or not a mapping."""
    value: Any = raw
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def int_at(raw: Mapping[str, Any], path: str) -> int | None:
    """The integer at a dotted path, or None when absent or not an integer."""
    value = field_at(raw, path)
    # bool is an int subclass; a boolean where a count belongs is malformed, not 0/1.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def str_at(raw: Mapping[str, Any], path: str) -> str:
    """The string at a dotted path, or "" when absent or not a string."""
    value = field_at(raw, path)
    return value if isinstance(value, str) else ""


def plural(count: int, noun: str) -> str:
    """Count and noun: 1 replica, 3 replicas."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@dataclass(frozen=True)
class Condition:
    """One entry of status.conditions."""

    type: str
    status: str
    reason: str
    message: str

    @property
    def is_true(self) -> bool:
        """Whether status is "True"."""
        return self.status == "True"

    @property
    def is_false(self) -> bool:
        """Whether status is "False" (not merely absent or Unknown)."""
        return self.status == "False"

    def explain(self) -> str:
        """Reason and message joined by a colon, or whichever of the two is present."""
        return ": ".join(part for part in (self.reason, self.message) if part) or self.type


@dataclass(frozen=True)
class ApiObject:
    """Typed reads from a Kubernetes object as the API server returns it."""

    raw: Mapping[str, Any]

    def number(self, path: str, default: int) -> int:
        """The integer at a dotted path, or default."""
        value = int_at(self.raw, path)
        return default if value is None else value

    def text(self, path: str) -> str:
        """The string at a dotted path, or ""."""
        return str_at(self.raw, path)

    @property
    def kind(self) -> str:
        """The kind, e.g. Deployment."""
        return self.text("kind")

    @property
    def group_kind(self) -> str:
        """Group and kind, e.g. apps/Deployment; core kinds have no group: Pod."""
        api_version = self.text("apiVersion")
        group = api_version.rpartition("/")[0]
        return f"{group}/{self.kind}" if group else self.kind

    @property
    def title(self) -> str:
        """How messages name the object, e.g. Deployment web."""
        name = self.text("metadata.name") or "(unnamed)"
        return f"{self.kind or 'Object'} {name}"

    def condition(self, condition_type: str) -> Condition | None:
        """The status condition of the given type, if the object reports one."""
        entries = field_at(self.raw, "status.conditions")
        if not isinstance(entries, list):
            return None
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("type") == condition_type:
                return Condition(
                    type=condition_type,
                    status=str_at(entry, "status"),
                    reason=str_at(entry, "reason"),
                    message=str_at(entry, "message"),
                )
        return None

    def current(self, detail: str) -> Health:
        """A CURRENT verdict for this object."""
        return Health(Status.CURRENT, f"{self.title}: {detail}")

    def in_progress(self, detail: str) -> Health:
        """An IN_PROGRESS verdict for this object."""
        return Health(Status.IN_PROGRESS, f"{self.title}: {detail}")

    def failed(self, reason: str, detail: str) -> Health:
        """A FAILED verdict for this object."""
        return Health(Status.FAILED, f"{self.title}: {detail}", reason)
