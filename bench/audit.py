"""API load from the API server's audit log (Metadata level, one JSON object per line).

The log rotates at 200 MB (one backup): a mark remembers the file's inode and offset, so reading
"since the mark" follows the file into its rotated name and then reads the new one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Mark:
    inode: int
    offset: int
    at: datetime


def now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> Mark:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return Mark(0, 0, now())
        return Mark(st.st_ino, st.st_size, now())

    def _lines(self, mark: Mark) -> Iterator[str]:
        files = sorted(self.path.parent.glob("audit*.log"), key=lambda p: p.stat().st_mtime)
        for path in files:
            st = path.stat()
            if st.st_ino == mark.inode:
                offset = mark.offset
            elif st.st_mtime >= mark.at.timestamp() - 1:
                offset = 0  # created after the mark (the log rotated)
            else:
                continue
            with path.open("rb") as f:
                f.seek(offset)
                for raw in f:
                    yield raw.decode(errors="replace")

    def requests(
        self,
        since: Mark,
        until: datetime | None = None,
        users: Iterable[str] = (),
        contains: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        """One entry per request received in [since, until] from these users (default: all),
        whose log line contains one of `contains` (default: any line)."""
        wanted = set(users)
        needles = [f'"username":"{u}"' for u in wanted]
        texts = list(contains)
        by_id: dict[str, dict[str, Any]] = {}
        for line in self._lines(since):
            if needles and not any(n in line for n in needles):
                continue
            if texts and not any(t in line for t in texts):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line being written right now
            if wanted and (entry.get("user") or {}).get("username") not in wanted:
                continue
            received = datetime.fromisoformat(entry["requestReceivedTimestamp"])
            if received < since.at or (until is not None and received > until):
                continue
            by_id[entry["auditID"]] = entry  # a watch logs ResponseStarted, then Complete
        return list(by_id.values())


def call_name(entry: dict[str, Any]) -> str:
    """e.g. `patch deployjobs/status`, `watch pods`, `get /apis/apps/v1`."""
    ref = entry.get("objectRef") or {}
    if not ref:
        return f"{entry.get('verb')} {entry.get('requestURI', '').split('?')[0]}"
    resource = ref.get("resource", "")
    if ref.get("subresource"):
        resource += f"/{ref['subresource']}"
    return f"{entry.get('verb')} {resource}"


def load(entries: list[dict[str, Any]], runs: int = 0, minutes: float = 0.0) -> dict[str, Any]:
    """Requests and writes, in total, per run and per minute, and what they were."""
    writes = [e for e in entries if e.get("verb") in WRITE_VERBS]
    watches = [e for e in entries if e.get("verb") == "watch"]
    calls = Counter(call_name(e) for e in entries)
    agents = Counter(str(e.get("userAgent", "")).split(" ")[0] for e in entries)
    out: dict[str, Any] = {
        "requests": len(entries),
        "writes": len(writes),
        "watch_requests": len(watches),
        "calls": dict(calls.most_common()),
        "user_agents": dict(agents.most_common()),
    }
    if runs:
        out["requests_per_run"] = round(len(entries) / runs, 2)
        out["writes_per_run"] = round(len(writes) / runs, 2)
    if minutes:
        out["requests_per_minute"] = round(len(entries) / minutes, 2)
        out["non_watch_requests_per_minute"] = round((len(entries) - len(watches)) / minutes, 2)
    return out
