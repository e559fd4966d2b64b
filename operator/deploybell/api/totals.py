"""status.totals: a DeployJob's finished runs per outcome, and the timestamps status holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

OUTCOME_NAMES: Final = ("succeeded", "failed", "canceled")


def parse_time(stamp: str) -> datetime | None:
    """An RFC 3339 timestamp (status times, committedAt); None when empty or unreadable."""
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


@dataclass(frozen=True)
class Totals:
    """Finished runs of one DeployJob per outcome, counted since `since` for `environment`.

    A change of environment starts the counts afresh (a new series with a new start time), so
    no run is counted under two environments."""

    environment: str
    since: str
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0

    def count(self, outcome: str) -> int:
        return int(getattr(self, outcome))

    def add(self, outcome: str) -> Totals:
        counts = {name: self.count(name) for name in OUTCOME_NAMES}
        counts[outcome] += 1
        return Totals(self.environment, self.since, **counts)

    def as_status(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "since": self.since,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "canceled": self.canceled,
        }

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> Totals | None:
        if not raw or not raw.get("environment"):
            return None
        return cls(
            environment=str(raw["environment"]),
            since=str(raw.get("since") or ""),
            **{outcome: _count(raw.get(outcome)) for outcome in OUTCOME_NAMES},
        )


def _count(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
