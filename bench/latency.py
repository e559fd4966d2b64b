"""(1) notification latency and (2) the `kubectl rollout status` comparison, per size."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from bench import audit, stats, timeline
from bench.cluster import BARE_USER, OPERATOR_USER
from bench.lab import Lab, create_jobs, wait_settled, wait_until
from bench.procstats import UsageWindow
from bench.rollout import KubectlRollouts
from bench.watch import Key


def sample_of(keys: list[Key], size: int) -> list[Key]:
    """`size` keys spread evenly over the list (all of them when it is short enough)."""
    if size <= 0:
        return []
    step = max(1, len(keys) // size)
    return keys[::step][:size]


def measure_size(lab: Lab, namespace: str, size: int) -> dict[str, Any]:
    """Repeated sizes: clean repetitions for the latency, then one more side by side with kubectl
    (a kubectl process per Deployment costs CPU that would distort deploybell's figures).
    A size run once has kubectl on a sample in that one run."""
    count = lab.config.reps_for(size)
    sample = min(lab.config.kubectl_sample, size)
    if count == 1:
        reps = [run_rep(lab, namespace, size, 1, sample)]
        compared = reps
    else:
        reps = [run_rep(lab, namespace, size, rep, 0) for rep in range(1, count + 1)]
        compared = [run_rep(lab, namespace, size, count + 1, sample)] if sample else []
    kubectl = [r["kubectl"] for r in compared]
    return {
        "size": size,
        "reps": reps,
        "kubectl_reps": compared if compared is not reps else [],
        "start_ms": stats.median_of([r["start_ms"] for r in reps]),
        "detect_ms": stats.median_of([r["detect_ms"] for r in reps]),
        "end_to_end_ms": stats.median_of([r["end_to_end_ms"] for r in reps]),
        "kubectl_sample": sum(k["sample"] for k in kubectl),
        "kubectl_detect_ms": stats.median_of([k["kubectl_detect_ms"] for k in kubectl]),
        "deploybell_detect_on_sample_ms": stats.median_of(
            [k["deploybell_detect_ms"] for k in kubectl]
        ),
        "difference_p50_ms": stats.median(k["difference_p50_ms"] for k in kubectl),
        "ratio_p50": stats.median(k["ratio_p50"] for k in kubectl),
        "ratio_p95": stats.median(k["ratio_p95"] for k in kubectl),
        "end_to_end_ratio_p50": stats.median(k["end_to_end_ratio_p50"] for k in kubectl),
        "pipeline": reps[-1].get("pipeline", []),
        "writes_per_run": stats.median(r["api"].get("writes_per_run") for r in reps),
        "cpu_seconds": stats.median((r.get("usage") or {}).get("cpu_seconds") for r in reps),
        "rss_peak_mib": stats.median((r.get("usage") or {}).get("rss_peak_mib") for r in reps),
        "requests_per_run": stats.median(r["api"].get("requests_per_run") for r in reps),
    }


def run_rep(lab: Lab, namespace: str, size: int, rep: int, kubectl: int) -> dict[str, Any]:
    label = f"n{size}-r{rep}"
    names = [f"{label}-{i:04d}" for i in range(size)]
    keys = [(namespace, name) for name in names]
    sample = sample_of(keys, kubectl)
    lab.say(
        f"latency: {size} DeployJobs at once ({label}), kubectl rollout status on {len(sample)}"
    )
    rollouts = KubectlRollouts(lab.cluster.bins / "kubectl", lab.cluster.kubeconfig, sample)
    lab.watch.on_added = rollouts.offer
    mark = lab.audit.mark() if lab.audit else None
    began = time.monotonic()
    try:
        with UsageWindow({"deploybell": lab.operator.pid}) as window:
            sent = create_jobs(lab.api, namespace, names, label)
            created = time.monotonic()
            wait_for_event(lab, namespace, names, "success", 1, timeout=120 + size * 0.6)
            notified = time.monotonic()
            wait_settled(lab.api, namespace, label, 1, names)
            settled = time.monotonic()
        ended = audit.now()
        wait_until("kubectl rollout status", lambda: not rollouts.pending(), 30, 0.1)
    finally:
        lab.watch.on_added = None
        rollouts.close()
    result = latencies(lab, namespace, sent, began, generation=1, run=1)
    result.update(
        size=size,
        rep=rep,
        seconds={
            "create_all": round(created - began, 2),
            "all_notified": round(notified - began, 2),
            "all_settled": round(settled - began, 2),
        },
        kubectl=compare(lab, sample, rollouts, sent, began),
        usage=window.result.get("deploybell"),
    )
    if mark is not None and lab.audit is not None:
        result["api"] = audit.load(lab.audit.requests(mark, ended, [OPERATOR_USER]), runs=size)
        result["bare_api"] = audit.load(lab.audit.requests(mark, ended, [BARE_USER]), runs=size)
        in_namespace = lab.audit.requests(mark, ended, contains=[f'"namespace":"{namespace}"'])
        ready = {n: lab.watch.ready_after((namespace, n), began, 1) for n in names}
        per_job = timeline.steps_per_job(
            in_namespace,
            set(names),
            lab.sink.arrivals(began),
            namespace,
            {n: at for n, at in ready.items() if at is not None},
        )
        result["pipeline"] = timeline.pipeline(per_job)
    else:
        result["api"] = result["bare_api"] = {}
    detect = result["detect_ms"]
    lab.say(
        f"  {label}: detect p50 {detect['p50']} ms p99 {detect['p99']} ms, "
        f"start p50 {result['start_ms']['p50']} ms, settled in {settled - began:.1f}s"
    )
    return result


def wait_for_event(
    lab: Lab, namespace: str, names: list[str], event: str, run: int, timeout: float
) -> None:
    def missing() -> list[str]:
        return [n for n in names if lab.sink.first(f"{namespace}/{n}", event, run) is None]

    deadline = time.monotonic() + timeout
    next_report = time.monotonic() + 15
    while left := missing():
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(
                f"{len(left)} of {len(names)} {event} notifications (run {run}) missing after "
                f"{timeout:.0f}s, e.g. {left[:5]}; operator log:\n{lab.operator.tail(15)}"
            )
        if now > next_report:
            lab.say(f"  ... {len(names) - len(left)}/{len(names)} {event} notifications so far")
            next_report = now + 15
        time.sleep(0.1)


def latencies(
    lab: Lab,
    namespace: str,
    sent: Mapping[str, float],
    since: float,
    generation: int,
    run: int,
) -> dict[str, Any]:
    """Per DeployJob: start notification - create, success notification - rolled out."""
    start, detect, end_to_end = [], [], []
    unready = 0
    for name, created in sent.items():
        subject = f"{namespace}/{name}"
        started = lab.sink.first(subject, "start", run)
        succeeded = lab.sink.first(subject, "success", run)
        ready = lab.watch.ready_after((namespace, name), since, generation)
        if started is not None:
            start.append(started - created)
        if succeeded is not None:
            end_to_end.append(succeeded - created)
            if ready is None:
                unready += 1
            else:
                detect.append(succeeded - ready)
    return {
        "start_ms": stats.summary_ms(start),
        "detect_ms": stats.summary_ms(detect),
        "end_to_end_ms": stats.summary_ms(end_to_end),
        "not_seen_ready": unready,
        "duplicates": lab.sink.duplicates({f"{namespace}/{n}" for n in sent}),
    }


def compare(
    lab: Lab,
    sample: list[Key],
    rollouts: KubectlRollouts,
    sent: Mapping[str, float],
    since: float,
) -> dict[str, Any]:
    """kubectl and deploybell on the same Deployments of the same repetition: detection after
    the bench's watch saw the rollout complete, and end to end from the DeployJob's creation."""
    kubectl, ours, kubectl_total, ours_total, launch = [], [], [], [], []
    for key in sample:
        ready = lab.watch.ready_after(key, since, 1)
        succeeded = lab.sink.first(f"{key[0]}/{key[1]}", "success", 1)
        detected = rollouts.detected.get(key)
        added = lab.watch.added(key)
        if key in rollouts.started and added is not None:
            launch.append(rollouts.started[key] - added)
        if detected is None or succeeded is None:
            continue
        kubectl_total.append(detected - sent[key[1]])
        ours_total.append(succeeded - sent[key[1]])
        if ready is not None:
            kubectl.append(detected - ready)
            ours.append(succeeded - ready)
    kubectl_ms, ours_ms = stats.summary_ms(kubectl), stats.summary_ms(ours)
    kubectl_total_ms, ours_total_ms = stats.summary_ms(kubectl_total), stats.summary_ms(ours_total)
    return {
        "sample": len(sample),
        "kubectl_detect_ms": kubectl_ms,
        "deploybell_detect_ms": ours_ms,
        "difference_p50_ms": stats.difference(ours_ms["p50"], kubectl_ms["p50"]),
        "ratio_p50": stats.ratio(ours_ms["p50"], kubectl_ms["p50"]),
        "ratio_p95": stats.ratio(ours_ms["p95"], kubectl_ms["p95"]),
        "kubectl_end_to_end_ms": kubectl_total_ms,
        "deploybell_end_to_end_ms": ours_total_ms,
        "end_to_end_ratio_p50": stats.ratio(ours_total_ms["p50"], kubectl_total_ms["p50"]),
        "kubectl_launch_after_added_ms": stats.summary_ms(launch),
        "kubectl_failures": len(rollouts.failures),
    }
