"""The machine, the targets of issue 7, the printed table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kopf

from bench import stats


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "")
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "cpu": model or platform.processor(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kopf": kopf.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue that this run measured: what, the limit, the value, met."""
    rows: list[dict[str, Any]] = []

    def check(name: str, value: Any, limit: float, ok: Callable[[float], bool]) -> None:
        if value is not None:
            rows.append({"target": name, "limit": limit, "value": value, "met": ok(value)})

    latency = results.get("latency") or {}
    for size, p99 in (("100", 500), ("1000", 3000)):
        value = _get(latency, size, "detect_ms", "p99")
        check(f"success - rolled out p99 at N={size} (ms)", value, p99, lambda v, p=p99: v <= p)
    for size, limit in (("100", 1.05), ("1000", 1.10)):
        ratio = _get(latency, size, "end_to_end_ratio_p50")
        check(f"end to end deploybell/kubectl p50 at N={size}", ratio, limit,
              lambda v, lim=limit: v <= lim)  # fmt: skip
    for size, figures in latency.items():
        check(f"writes per run at N={size}", figures.get("writes_per_run"), 5, lambda v: v <= 5)
    footprint = results.get("footprint") or {}
    ours_cpu = _get(footprint, "active", "deploybell", "cpu_seconds")
    bare_cpu = _get(footprint, "active", "bare", "cpu_seconds")
    cpu_ratio = stats.ratio(ours_cpu, bare_cpu) if ours_cpu is not None else None
    check("CPU for the active runs / bare kopf", cpu_ratio, 1.0, lambda v: v <= 1.0)
    idle_rss = _get(footprint, "idle", "rss_ratio")
    polling = _get(footprint, "idle", "api", "non_watch_requests_per_minute")
    watches = _get(footprint, "idle", "run_watches")
    resent = _get(results, "restart", "summary", "resent")
    handling = _get(results, "restart", "summary", "handling_seconds")
    jobs = _get(footprint, "idle", "jobs")
    check(f"idle RSS / bare kopf with {jobs} DeployJobs", idle_rss, 1.0, lambda v: v <= 1.0)
    check("run watches open while idle", watches, 0, lambda v: v == 0)
    check("non-watch requests per minute, idle", polling, 0, lambda v: v == 0)
    check(f"restart: handling events again with {jobs} DeployJobs (s)", handling, 3.0,
          lambda v: v <= 3.0)  # fmt: skip
    check("notifications re-sent after restart", resent, 0, lambda v: v == 0)
    scale = results.get("scale") or {}
    many = scale.get("jobs")
    check(f"idle RSS with {many} DeployJobs (MiB)", _get(scale, "idle", "deploybell", "rss_mib"),
          300, lambda v: v <= 300)  # fmt: skip
    check(f"restart: handling events again with {many} DeployJobs (s)",
          _get(scale, "restart", "handling_seconds"), 10.0, lambda v: v <= 10.0)  # fmt: skip
    check(f"notifications re-sent after the restart with {many}",
          _get(scale, "restart", "resent"), 0, lambda v: v == 0)  # fmt: skip
    return rows


def _ms(summary: dict[str, Any] | None) -> str:
    if not summary or summary.get("p50") is None:
        return "-"
    return "/".join(f"{summary[k]:.0f}" for k in ("p50", "p95", "p99", "max"))


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def table(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"deploybell bench {results['run_id']} on {m['cores']} cores, {m['memory_gib']} GiB "
        f"({m['cpu']}); Python {m['python']}, kopf {m['kopf']}; {results['wall_seconds']:.0f}s",
        f"load average (1/5/15 min) at start {m['load_average_at_start']}, "
        f"at end {m.get('load_average_at_end')}",
    ]
    threads = (results.get("config") or {}).get("operator_threads", "0")
    if threads != "0":
        lines.append(f"WHAT-IF: the operator ran with {threads} threads for its API calls")
    lines += [
        "",
        "(1) latency in ms, p50/p95/p99/max (median over reps); N DeployJobs created at once",
        f"  {'N':>5} {'reps':>4}  {'success - rolled out':<24} {'start - create':<24} "
        f"{'success - create':<24}",
    ]
    latency = results.get("latency") or {}
    for size, f in latency.items():
        lines.append(
            f"  {size:>5} {len(f['reps']):>4}  {_ms(f['detect_ms']):<24} {_ms(f['start_ms']):<24} "
            f"{_ms(f['end_to_end_ms']):<24}"
        )
    lines += [
        "",
        "(2) vs `kubectl rollout status` on the same Deployments: one process per Deployment,",
        "    started as it appears, in one more repetition (a sample for unrepeated sizes);",
        "    detection = notified - the bench saw it rolled out; end to end = notified - created",
        f"  {'N':>5} {'sample':>6}  {'deploybell detect':<22} {'kubectl detect':<22} "
        f"{'diff p50':>8} {'ratio p50':>9} {'end-to-end ratio p50':>20}",
    ]
    for size, f in latency.items():
        lines.append(
            f"  {size:>5} {f['kubectl_sample']:>6}  {_ms(f['deploybell_detect_on_sample_ms']):<22} "
            f"{_ms(f['kubectl_detect_ms']):<22} {_num(f['difference_p50_ms'], '{:+.0f}'):>8} "
            f"{_num(f['ratio_p50'], '{:.2f}'):>9} {_num(f['end_to_end_ratio_p50'], '{:.2f}'):>20}"
        )
    lines += ["", *_footprint_lines(results), "", *_api_lines(results), ""]
    lines += [*_restart_lines(results), *_scale_lines(results), *_flux_lines(results)]
    lines += _pipeline_lines(results)
    lines += _profile_lines(results)
    lines += ["", "targets:"]
    for row in results.get("targets") or []:
        mark = "met   " if row["met"] else "MISSED"
        lines.append(f"  [{mark}] {row['target']}: {row['value']} (limit {row['limit']})")
    for warning in results.get("warnings") or []:
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def _footprint_lines(results: dict[str, Any]) -> list[str]:
    fp = results.get("footprint") or {}
    lines = [
        "(3) memory and CPU: deploybell vs a bare kopf operator watching the same kinds",
        f"  {'phase':<34} {'RSS MiB (peak)':>16} {'bare RSS (peak)':>16} {'ratio (peak)':>12} "
        f"{'CPU s':>7} {'bare CPU s':>10}",
    ]
    phases = (
        ("start", "started, no DeployJobs"),
        ("idle", f"idle, {_get(fp, 'idle', 'jobs')} jobs, {_get(fp, 'idle', 'seconds')} s"),
        ("active", f"{_get(fp, 'active', 'active')} active of {_get(fp, 'active', 'jobs')}"),
    )
    for key, title in phases:
        f = fp.get(key)
        if not f:
            continue
        ours, floor = f["deploybell"], f["bare"]
        lines.append(
            f"  {title:<34} {_rss(ours):>16} {_rss(floor):>16} {_ratio(f):>12} "
            f"{ours['cpu_seconds']:>7.1f} {floor['cpu_seconds']:>10.1f}"
        )
    restart = _get(results, "restart", "summary")
    if restart:
        rss = _num(restart["rss_mib_after"], "{:.0f}")
        lines.append(f"  {'after a restart (median)':<34} {rss:>16}")
    return lines


def _rss(usage: dict[str, Any]) -> str:
    peak = f" ({usage['rss_peak_mib']:.0f})" if "rss_peak_mib" in usage else ""
    return f"{usage['rss_mib']:.0f}{peak}"


def _ratio(figures: dict[str, Any]) -> str:
    peak = figures.get("rss_peak_ratio")
    return _num(figures.get("rss_ratio"), "{:.2f}") + (f" ({peak:.2f})" if peak else "")


def _api_lines(results: dict[str, Any]) -> list[str]:
    lines = [
        "(4) API load from the audit log (user deploybell-bench: deploybell/0.1.0 + kopf)",
        f"  {'N':>5} {'requests/run':>12} {'writes/run':>10}  writes by call (all reps)",
    ]
    for size, f in (results.get("latency") or {}).items():
        calls: dict[str, int] = {}
        for rep in f["reps"]:
            for call, n in (rep.get("api") or {}).get("calls", {}).items():
                if call.split(" ")[0] in ("create", "update", "patch", "delete"):
                    calls[call] = calls.get(call, 0) + n
        top = ", ".join(f"{c} {n}" for c, n in sorted(calls.items(), key=lambda kv: -kv[1])[:5])
        lines.append(
            f"  {size:>5} {_num(f['requests_per_run'], '{:.1f}'):>12} "
            f"{_num(f['writes_per_run'], '{:.1f}'):>10}  {top}"
        )
    idle = _get(results, "footprint", "idle", "api")
    bare = _get(results, "footprint", "idle", "bare_api")
    watches = _get(results, "footprint", "idle", "run_watches")
    if watches is not None:
        lines.append(f"  idle: {watches:.0f} watches open on the kinds a run observes")
    if idle:
        lines.append(
            f"  idle: {idle['requests_per_minute']} requests/min, of which non-watch "
            f"{idle['non_watch_requests_per_minute']}/min ({idle['calls'] or 'none'}); "
            f"bare kopf: {(bare or {}).get('requests_per_minute')}/min"
        )
    active = _get(results, "footprint", "active", "api")
    if active:
        lines.append(
            f"  active (a second run): {active.get('requests_per_run')} requests/run, "
            f"{active.get('writes_per_run')} writes/run"
        )
    return lines


def _restart_lines(results: dict[str, Any]) -> list[str]:
    restart = results.get("restart") or {}
    summary = restart.get("summary")
    if not summary:
        return []
    reps = restart.get("reps") or []
    jobs = reps[0]["jobs"] if reps else "?"
    return [
        f"(5) restart with {jobs} DeployJobs (median of {len(reps)})",
        f"  stop {summary['stop_seconds']} s; start → healthy {summary['healthy_seconds']} s; "
        f"start → handling events (a new DeployJob's start message) "
        f"{summary['handling_seconds']} s",
        f"  notifications re-sent: {summary['resent']}; requests {summary['requests']}, "
        f"writes {summary['writes']} (including the new DeployJob's run)",
    ]


def _scale_lines(results: dict[str, Any]) -> list[str]:
    scale = results.get("scale")
    if not scale:
        return []
    restart, idle = scale["restart"], scale["idle"]
    return [
        "",
        f"(5b) {scale['jobs']} DeployJobs in place ({scale['ran']} ran; the others were given "
        f"a copy of a finished run's status, in {scale['created_seconds']} s)",
        f"  restart: healthy {restart['healthy_seconds']} s, handling events "
        f"{restart['handling_seconds']} s, re-sent {restart['resent']}",
        f"  bare kopf restarted too, settled (its first listing handled) after "
        f"{scale.get('bare_settled_seconds', '-')} s",
        f"  idle {idle['seconds']:.0f} s: RSS {_rss(idle['deploybell'])} MiB, bare kopf "
        f"{_rss(idle['bare'])} MiB, ratio {_ratio(idle)}; CPU {idle['deploybell']['cpu_seconds']}"
        f" s, bare {idle['bare']['cpu_seconds']} s",
    ]


def _flux_lines(results: dict[str, Any]) -> list[str]:
    flux = results.get("flux")
    if not flux:
        return []
    if "error" in flux:
        return ["", f"(6) Flux as a peer: not measured: {flux['error']}"]
    pins = ", ".join(
        f"{k.removeprefix('FLUX_').removesuffix('_VERSION').lower()} {v}"
        for k, v in flux["versions"].items()
    )
    lines = [
        "",
        f"(6) Flux as a peer ({pins}): the same N Deployments in one Kustomization (wait: true)",
        "    from a git repository on loopback, a generic-webhook Alert; message - rolled out",
        "    per Deployment (Flux: its one `Health check passed` event), ms p50/p99; ratio",
        "    deploybell / Flux; CPU s for the N (deploybell: median rep); RSS MiB after",
        f"  {'N':>5}  {'deploybell':<13} {'Flux':<13} {'ratio p50/p99':<13} "
        f"{'Flux after last':>15} {'CPU deploybell/Flux':>19} {'RSS deploybell/Flux':>19}",
    ]
    latency = results.get("latency") or {}
    for size, f in (flux.get("sizes") or {}).items():
        ours = latency.get(size) or {}
        mine, theirs = ours.get("detect_ms") or {}, f.get("detect_ms") or {}
        ratio = "/".join(
            _num(stats.ratio(mine.get(k), theirs.get(k)), "{:.2f}") for k in ("p50", "p99")
        )
        cpu = f"{_num(ours.get('cpu_seconds'))}/{_num(f.get('cpu_seconds'))}"
        theirs_rss = f["rss_mib_after"]["total"]
        rss = f"{_num(ours.get('rss_peak_mib'), '{:.0f}')}/{_num(theirs_rss, '{:.0f}')}"
        lines.append(
            f"  {size:>5}  {_p50_p99(mine):<13} {_p50_p99(theirs):<13} {ratio:<13} "
            f"{_num(f.get('after_last_ready_ms'), '{:.0f}'):>15} {cpu:>19} {rss:>19}"
        )
    started = flux.get("started") or {}
    lines.append(f"  Flux's three controllers at start: {started.get('total')} MiB RSS")
    return lines


def _p50_p99(summary: dict[str, Any]) -> str:
    if summary.get("p50") is None:
        return "-"
    return f"{summary['p50']:.0f}/{summary['p99']:.0f}"


def _pipeline_lines(results: dict[str, Any]) -> list[str]:
    latency = results.get("latency") or {}
    if not latency:
        return []
    size, figures = list(latency.items())[-1]
    rows = figures.get("pipeline") or []
    if not rows:
        return []
    lines = [
        "",
        f"where a run's time goes at N={size} (last repetition; ms after its DeployJob's create)",
        f"  {'step (operator requests, kopf: = kopf client)':<52} {'jobs':>5} {'p50':>7} "
        f"{'p95':>7} {'server p50':>10}",
    ]
    for row in rows:
        if row["jobs"] < max(1, int(size) // 10):
            continue  # rare steps (retries, a second wake-up) would crowd the table
        server = "" if row["server_ms_p50"] is None else str(row["server_ms_p50"])
        lines.append(
            f"  {row['step'][:52]:<52} {row['jobs']:>5} {row['after_create_ms_p50']:>7} "
            f"{row['after_create_ms_p95']:>7} {server:>10}"
        )
    return lines


def _profile_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for what, profile in (
        ("the largest N", results.get("profile")),
        ("the first restart", _get(results, "restart", "profile")),
    ):
        lines += _one_profile(what, profile)
    return lines


def _one_profile(what: str, profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    if "error" in profile:
        return ["", f"profile of {what}: {profile['error']}"]
    threads = ", ".join(f"{name} {share}%" for name, share in profile["threads"][:4])
    lines = ["", f"profile of the operator during {what} (py-spy, {profile['samples']} "
             f"samples; threads: {threads})", "  inclusive:"]  # fmt: skip
    lines += [f"    {share:5.1f}%  {name}" for name, share in profile["inclusive_percent"][:12]]
    lines.append("  self:")
    lines += [f"    {share:5.1f}%  {name}" for name, share in profile["self_percent"][:8]]
    return lines


def write_json(results: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{results['run_id']}.json"
    text = json.dumps(results, indent=1, default=str) + "\n"
    path.write_text(text)
    (out_dir / "latest.json").write_text(text)
    return path
