"""(5) restart with many DeployJobs in place: time to handle a new one, and no message re-sent.

The operator is stopped (SIGTERM) and started again; at the moment of the start a new DeployJob
`zz-restart-<n>` is created. Its name sorts after every existing one, so the operator's first
listing hands it over last: its start notification marks the moment the operator has caught up
with everything that existed and is handling events. Afterwards the receiver must have heard
nothing about the existing DeployJobs.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

from bench import audit, stats
from bench.cluster import OPERATOR_USER
from bench.lab import Lab, create_jobs, wait_settled
from bench.latency import wait_for_event
from bench.procstats import MIB, usage
from bench.profile import Profile


def restart(
    lab: Lab, namespace: str, jobs: int, rep: int, profile: Profile | None = None
) -> dict[str, Any]:
    probe = f"zz-restart-{rep}"
    subject = f"{namespace}/{probe}"
    lab.say(f"restart {rep}: stopping the operator with {jobs} DeployJobs in place")
    stop_seconds = lab.operator.stop()
    mark = lab.audit.mark() if lab.audit else None
    began = time.monotonic()
    lab.operator.start(wait=False)
    created = create_jobs(lab.api, namespace, [probe], f"restart-{rep}")[probe]
    healthy_at = handled_at = None
    deadline = began + 300
    with ExitStack() as stack:
        while handled_at is None or healthy_at is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"restart {rep}: not handling events after 300s:\n"
                                   f"{lab.operator.tail(20)}")  # fmt: skip
            if healthy_at is None and lab.operator.healthy():
                healthy_at = time.monotonic()
                if profile is not None:  # attached once the interpreter runs: the catch-up
                    profile.pid = lab.operator.pid
                    stack.enter_context(profile)
            handled_at = lab.sink.first(subject, "start", 1)
            time.sleep(0.02)
    wait_for_event(lab, namespace, [probe], "success", 1, timeout=120)
    wait_settled(lab.api, namespace, f"restart-{rep}", 1, [probe])
    time.sleep(lab.config.quiet_seconds)  # listening for re-sent messages, which must not come
    resent = [a for a in lab.sink.arrivals(since=began) if a.subject != subject]
    after = usage(lab.operator.pid)
    result: dict[str, Any] = {
        "rep": rep,
        "jobs": jobs,
        "stop_seconds": round(stop_seconds, 2),
        "healthy_seconds": round(healthy_at - began, 2),
        "handling_seconds": round(handled_at - began, 2),
        "probe_start_after_create_ms": round((handled_at - created) * 1000, 1),
        "resent": len(resent),
        "resent_examples": [f"{a.subject} {a.event} run {a.run}" for a in resent[:5]],
        "rss_mib_after": round(after.rss_bytes / MIB, 1),
        "cpu_seconds_after": round(after.cpu_seconds, 2),
    }
    if mark is not None and lab.audit is not None:
        ours = lab.audit.requests(mark, audit.now(), [OPERATOR_USER])
        result["api"] = audit.load(ours)
    lab.say(
        f"  restart {rep}: healthy after {result['healthy_seconds']}s, handling events after "
        f"{result['handling_seconds']}s, {len(resent)} re-sent"
    )
    return result


def summarize(reps: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("stop_seconds", "healthy_seconds", "handling_seconds", "rss_mib_after")
    out: dict[str, Any] = {key: stats.median(r[key] for r in reps) for key in keys}
    out["resent"] = sum(r["resent"] for r in reps)
    out["requests"] = stats.median((r.get("api") or {}).get("requests") for r in reps)
    out["writes"] = stats.median((r.get("api") or {}).get("writes") for r in reps)
    return out
