"""Where a run's time goes: the operator's requests on each DeployJob, in order, from the audit log.

Every step of a run is lined up against the DeployJob's own create request (the audit log's
clock) and the two notifications (the receiver's clock, moved to wall time): for each step,
the median and p95 of when it happened after the create, and how long the API server took.
A step is a request kind and its occurrence, e.g. the 2nd `patch deployjobs/status`.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bench.audit import call_name
from bench.cluster import OPERATOR_USER
from bench.sink import Arrival
from bench.stats import percentile


def received(entry: Mapping[str, Any]) -> float:
    return datetime.fromisoformat(entry["requestReceivedTimestamp"]).timestamp()


def server_ms(entry: Mapping[str, Any]) -> float:
    return (datetime.fromisoformat(entry["stageTimestamp"]).timestamp() - received(entry)) * 1000


def steps_per_job(
    entries: list[dict[str, Any]],
    names: set[str],
    arrivals: list[Arrival],
    namespace: str,
    ready: Mapping[str, float],
) -> dict[str, list[tuple[float, str, float | None]]]:
    """Job → [(seconds after its create, step, server ms)], in order. `ready` is monotonic."""
    wall = time.time() - time.monotonic()
    created: dict[str, float] = {}
    seen: dict[str, list[tuple[float, str, float | None]]] = defaultdict(list)
    for entry in entries:
        ref = entry.get("objectRef") or {}
        name = ref.get("name")
        if name not in names:
            continue
        user = (entry.get("user") or {}).get("username")
        if user != OPERATOR_USER:
            if entry.get("verb") == "create" and ref.get("resource") == "deployjobs":
                created[name] = received(entry)
            continue
        agent = "kopf: " if str(entry.get("userAgent", "")).startswith("kopf/") else ""
        seen[name].append((received(entry), agent + call_name(entry), server_ms(entry)))
    for arrival in arrivals:
        name = arrival.subject.removeprefix(f"{namespace}/")
        if name in names and arrival.subject.startswith(f"{namespace}/"):
            seen[name].append((arrival.at + wall, f"webhook {arrival.event} received", None))
    for name, at in ready.items():
        seen[name].append((at + wall, "rolled out (bench watch)", None))
    return {
        name: [(at - created[name], step, ms) for at, step, ms in sorted(steps)]
        for name, steps in seen.items()
        if name in created
    }


def pipeline(per_job: Mapping[str, list[tuple[float, str, float | None]]]) -> list[dict[str, Any]]:
    """The typical run: each step's median and p95 offset from the create, ordered by median."""
    offsets: dict[str, list[float]] = defaultdict(list)
    servers: dict[str, list[float]] = defaultdict(list)
    for steps in per_job.values():
        occurrences: dict[str, int] = defaultdict(int)
        for at, step, ms in steps:
            occurrences[step] += 1
            key = f"{step} #{occurrences[step]}" if occurrences[step] > 1 else step
            offsets[key].append(at)
            if ms is not None:
                servers[key].append(ms)
    rows = []
    for key, values in offsets.items():
        ordered = sorted(values)
        rows.append(
            {
                "step": key,
                "jobs": len(values),
                "after_create_ms_p50": round(statistics.median(ordered) * 1000),
                "after_create_ms_p95": round(percentile(ordered, 95) * 1000),
                "server_ms_p50": round(statistics.median(servers[key])) if servers[key] else None,
            }
        )
    return sorted(rows, key=lambda r: r["after_create_ms_p50"])
