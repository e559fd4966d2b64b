"""What `kubectl deploybell status|history` print, from a DeployJob object (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import IntEnum
from typing import Any

from deploybell.deploy.run import IN_FLIGHT, Phase


class Exit(IntEnum):
    """The plugin's exit codes; `--help` lists them."""

    OK = 0  # status: the latest run Succeeded; other commands: done
    FAILED = 1  # status: the latest run Failed or was Canceled; test: not every message delivered
    USAGE = 2  # bad command line (argparse's own code)
    IN_FLIGHT = 3  # status: a run is Pending, Deploying or Verifying, or none has started yet
    NOT_FOUND = 4  # no such DeployJob or Notification
    UNREACHABLE = 5  # the API server refused or could not be reached; --wait timed out


EXIT_CODES_HELP = """exit codes:
  0  done; for status: the latest run Succeeded
  1  status: the latest run Failed or was Canceled; test: a message was not delivered
  2  bad command line
  3  status: a run is in flight (Pending, Deploying, Verifying) or none has started yet
  4  no such DeployJob or Notification
  5  the cluster could not be reached or refused the request; --wait timed out"""


def exit_code(job: Mapping[str, Any]) -> Exit:
    phase = _status(job).get("phase")
    if phase == Phase.SUCCEEDED:
        return Exit.OK
    if phase in (Phase.FAILED, Phase.CANCELED):
        return Exit.FAILED
    return Exit.IN_FLIGHT


def in_flight(job: Mapping[str, Any]) -> bool:
    return _status(job).get("phase") in IN_FLIGHT


def summary(job: Mapping[str, Any]) -> dict[str, Any]:
    """The machine-readable status (`--output json|yaml`): the object's name and its status."""
    meta = job.get("metadata") or {}
    return {"name": meta.get("name"), "namespace": meta.get("namespace"), **_status(job)}


def status_text(job: Mapping[str, Any]) -> str:
    """Phase, reason and message, then tables: resources, failing pods, last runs, ledger."""
    status, meta = _status(job), job.get("metadata") or {}
    lines = [f"DeployJob {meta.get('namespace')}/{meta.get('name')}"]
    if not status.get("phase"):
        lines.append("Phase:       (no run yet: is the operator running?)")
        return "\n".join(lines) + "\n"
    lines += _facts(status)
    for title, rows in (
        ("Resources", _resources(status)),
        ("Failing pods", _pods(status)),
        ("Warning events", _warnings(status)),
        ("Last runs", _runs(status)),
        ("Notifications", _ledger(status)),
    ):
        if len(rows) > 1:
            lines += ["", f"{title}:", *(f"  {row}" for row in table(rows))]
    return "\n".join(lines) + "\n"


def history_text(job: Mapping[str, Any]) -> str:
    """The latest run (also when it is in flight), then the finished ones, newest first."""
    rows = _runs(_status(job))
    return "\n".join(table(rows)) + "\n" if len(rows) > 1 else "no runs yet\n"


def runs(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The runs as `history` lists them: the latest first (also when in flight)."""
    status = _status(job)
    past = [dict(h) for h in status.get("history") or []]
    if status.get("run") and not any(h.get("run") == status["run"] for h in past):
        latest = {
            key: status.get(key)
            for key in ("run", "phase", "reason", "message", "startedAt", "finishedAt", "revision")
            if status.get(key) is not None
        }
        past.insert(0, latest)
    return past


def _status(job: Mapping[str, Any]) -> Mapping[str, Any]:
    status = job.get("status")
    return status if isinstance(status, Mapping) else {}


def _facts(status: Mapping[str, Any]) -> list[str]:
    run = f" (run {status['run']})" if status.get("run") else ""
    facts = [
        ("Phase", f"{status.get('phase')}{run}"),
        ("Cluster", status.get("cluster")),  # a target cluster (spec.cluster)
        ("Reason", status.get("reason")),
        ("Message", status.get("message")),
        ("Started", status.get("startedAt")),
        ("Finished", _finished(status)),
        ("Revision", status.get("revision")),
        ("Images", ", ".join(status.get("images") or [])),
        ("Conditions", _conditions(status)),
    ]
    return [f"{label + ':':<13}{value}" for label, value in facts if value]


def _finished(status: Mapping[str, Any]) -> str:
    finished = str(status.get("finishedAt") or "")
    took = _duration(str(status.get("startedAt") or ""), finished)
    return f"{finished} (took {took})" if finished and took else finished


def _duration(started: str, finished: str) -> str:
    try:
        begin = datetime.fromisoformat(started.replace("Z", "+00:00"))
        end = datetime.fromisoformat(finished.replace("Z", "+00:00"))
    except ValueError:
        return ""
    minutes, seconds = divmod(max(0, round((end - begin).total_seconds())), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _conditions(status: Mapping[str, Any]) -> str:
    return " ".join(f"{c.get('type')}={c.get('status')}" for c in status.get("conditions") or [])


Row = Sequence[object]


def _resources(status: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = [("KIND", "NAMESPACE", "NAME", "STATUS", "MESSAGE")]
    for r in status.get("resources") or []:
        rows.append(
            (r.get("kind"), r.get("namespace"), r.get("name"), r.get("status"), r.get("message"))
        )
    return rows


def _pods(status: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = [("POD", "CONTAINER", "REASON", "EXIT", "RESTARTS", "MESSAGE")]
    for p in (status.get("diagnosis") or {}).get("pods") or []:
        rows.append(
            (
                p.get("pod"),
                p.get("container"),
                p.get("reason"),
                p.get("exitCode"),
                p.get("restarts"),
                p.get("message"),
            )
        )
    return rows


def _warnings(status: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = [("OBJECT", "REASON", "COUNT", "MESSAGE")]
    for w in (status.get("diagnosis") or {}).get("warnings") or []:
        rows.append((w.get("object"), w.get("reason"), w.get("count"), w.get("message")))
    return rows


def _runs(status: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = [("RUN", "PHASE", "REASON", "STARTED", "FINISHED", "MESSAGE")]
    for h in runs({"status": status}):
        rows.append(
            (
                h.get("run"),
                h.get("phase"),
                h.get("reason"),
                h.get("startedAt"),
                h.get("finishedAt"),
                h.get("message"),
            )
        )
    return rows


def _ledger(status: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = [
        ("RUN", "EVENT", "NOTIFICATION", "RECIPIENTS", "STATE", "ATTEMPTS", "DETAIL")
    ]
    for e in status.get("notifications") or []:
        rows.append(
            (
                e.get("run"),
                e.get("event"),
                e.get("notification"),
                _recipients(e),
                e.get("state"),
                e.get("attempts"),
                _delivery(e),
            )
        )
    return rows


def _recipients(row: Mapping[str, Any]) -> str:
    """`3`, or while some are not sent: `2 of 3 sent, 1 failed`; unknown while the row waits
    for its Notification."""
    total = row.get("recipients")
    if total is None:
        return "(waiting for the Notification)" if row.get("state") == "Pending" else ""
    done, failed = int(row.get("sent") or 0), int(row.get("failed") or 0)
    if done == total:
        return str(total)
    parts = [f"{done} of {total} sent"]
    if failed:
        parts.append(f"{failed} failed")
    if row.get("pending"):
        parts.append(f"{len(row['pending'])} pending")
    return ", ".join(parts)


def _delivery(entry: Mapping[str, Any]) -> str:
    error = str(entry.get("lastError") or "")
    if entry.get("state") == "Sent":
        return f"sent at {entry.get('sentAt')}" if entry.get("sentAt") else "sent"
    if entry.get("nextAttemptAt"):
        return f"retry at {entry['nextAttemptAt']}" + (f": {error}" if error else "")
    return error


def table(rows: Sequence[Row]) -> list[str]:
    """Columns as `kubectl get` aligns them; the last column is not padded."""
    cells = [["" if v is None else str(v).replace("\n", " ") for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return [
        "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells
    ]
