"""(3) memory and CPU of deploybell and the bare kopf floor, and (4) their API load while idle."""

from __future__ import annotations

import time
from typing import Any

from bench import audit, stats
from bench.cluster import BARE_USER, OPERATOR_USER, deployjobs_path
from bench.lab import Lab, bench_job, parallel, wait_settled
from bench.latency import latencies, wait_for_event
from bench.procstats import MIB, UsageWindow, usage


def snapshot(lab: Lab) -> dict[str, Any]:
    """RSS now and CPU seconds since each process started."""
    out = {}
    for name, proc in (("deploybell", lab.operator), ("bare", lab.bare)):
        u = usage(proc.pid)
        out[name] = {"rss_mib": round(u.rss_bytes / MIB, 1), "cpu_seconds": round(u.cpu_seconds, 2)}
    out["rss_ratio"] = stats.ratio(out["deploybell"]["rss_mib"], out["bare"]["rss_mib"])
    return out


def pids(lab: Lab) -> dict[str, int]:
    return {"deploybell": lab.operator.pid, "bare": lab.bare.pid}


def with_ratios(result: dict[str, Any]) -> dict[str, Any]:
    ours, floor = result.get("deploybell") or {}, result.get("bare") or {}
    result["rss_ratio"] = stats.ratio(ours.get("rss_mib"), floor.get("rss_mib"))
    result["rss_peak_ratio"] = stats.ratio(ours.get("rss_peak_mib"), floor.get("rss_peak_mib"))
    return result


def idle(lab: Lab, jobs: int) -> dict[str, Any]:
    seconds = lab.config.idle_seconds
    lab.say(f"idle: {jobs} DeployJobs, sampling both operators for {seconds:.0f}s")
    mark = lab.audit.mark() if lab.audit else None
    with UsageWindow(pids(lab)) as window:
        time.sleep(seconds)
    result: dict[str, Any] = {"jobs": jobs, "seconds": seconds, **with_ratios(window.result)}
    result["run_watches"] = lab.operator.run_watches()
    if mark is not None and lab.audit is not None:
        ended = audit.now()
        minutes = seconds / 60
        ours = lab.audit.requests(mark, ended, [OPERATOR_USER])
        floor = lab.audit.requests(mark, ended, [BARE_USER])
        result["api"] = audit.load(ours, minutes=minutes)
        result["bare_api"] = audit.load(floor, minutes=minutes)
    return result


def active(lab: Lab, namespace: str, names: list[str], jobs: int) -> dict[str, Any]:
    """A second run for `len(names)` DeployJobs (a new pod template), out of `jobs` in all."""
    lab.say(f"active: a new run for {len(names)} of {jobs} DeployJobs, sampling both operators")
    mark = lab.audit.mark() if lab.audit else None

    def patch(name: str) -> tuple[str, float]:
        body = {"spec": bench_job(name, "", {"bench.deploybell.io/rev": "2"})["spec"]}
        sent = time.monotonic()
        lab.api.request(
            "PATCH",
            deployjobs_path(namespace, name),
            body,
            content_type="application/merge-patch+json",
        )
        return name, sent

    began = time.monotonic()
    with UsageWindow(pids(lab)) as window:
        sent = dict(parallel(patch, names))
        wait_for_event(lab, namespace, names, "success", 2, timeout=120 + len(names) * 0.6)
        for label in sorted({name.rsplit("-", 1)[0] for name in names}):
            wait_settled(lab.api, namespace, label, 2, [n for n in names if n.startswith(label)])
    took = time.monotonic() - began
    result: dict[str, Any] = {
        "jobs": jobs,
        "active": len(names),
        "seconds": round(took, 1),
        **with_ratios(window.result),
        "latency": latencies(lab, namespace, sent, began, generation=2, run=2),
    }
    if mark is not None and lab.audit is not None:
        ours = lab.audit.requests(mark, audit.now(), [OPERATOR_USER])
        result["api"] = audit.load(ours, runs=len(names))
    return result
