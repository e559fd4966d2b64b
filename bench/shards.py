"""Sharding at scale: many DeployJobs spread over shards, each shard's RSS and restart.

`make bench BENCH_ARGS="--shards 4 --shard-jobs 10000"` (or `python -m bench.shards`): four
operator processes, the default shard and keys s1..s3, with the DeployJobs spread evenly by the
label sharding.deploybell.io/key. Each DeployJob applies one ConfigMap (one run each; no hooks,
so the figures are the shards' own, not a receiver's). Measured per shard: RSS once every run
has finished and the shards are idle, CPU while idle, then a restart of each shard in turn
(SIGTERM, start, and a probe DeployJob of that shard created at that moment, whose name sorts
after all others): seconds until healthy, and until the probe's start notification arrives,
i.e. the shard has caught up with its thousands of DeployJobs and is handling events. No
DeployJob may get a second run from a restart.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.deploybell import configmap, deployjob, notification, webhook_secret

from bench import report
from bench.cluster import (
    Api,
    ApiError,
    ClusterInfo,
    deployjobs_path,
    foreign_operators,
    install_crds,
    local_cluster,
    server_of,
)
from bench.lab import delete_collection, parallel, wait_until
from bench.operators import Supervised, deploybell
from bench.procstats import MIB, UsageWindow, usage
from bench.sink import TimedWebhookPeer

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "bench-shards"
LABEL = "sharding.deploybell.io/key"


@dataclass(frozen=True)
class ShardConfig:
    shards: int = 4
    """Shard processes: the default one (no label) and keys s1, s2, ..."""
    jobs: int = 10_000
    """DeployJobs in all, spread evenly."""
    idle_seconds: float = 30.0
    out_dir: Path = ROOT / "bench" / "results"


def keys(count: int) -> list[str]:
    return ["", *(f"s{i}" for i in range(1, count))]


def shard_job(name: str, key: str) -> dict[str, Any]:
    job = deployjob(name, [configmap(f"{name}-config", {"shard": key or "default"})])
    if key:
        job["metadata"]["labels"] = {LABEL: key}
    return job


def probe_job(name: str, key: str) -> dict[str, Any]:
    job = shard_job(name, key)
    job["spec"]["onStart"] = [{"notify": "deploy-notification"}]
    return job


def create(api: Api, jobs: list[dict[str, Any]]) -> None:
    def post(index: str) -> None:
        job = jobs[int(index)]
        try:
            api.request("POST", deployjobs_path(NAMESPACE), job)
        except ApiError as e:
            if e.status != 409:  # already there from an interrupted run
                raise

    parallel(post, [str(i) for i in range(len(jobs))], workers=16)


def phases(api: Api) -> dict[str, int]:
    """DeployJobs by phase of their latest run ("" for none yet)."""
    out: dict[str, int] = {}
    cont = ""
    while True:
        query = {"limit": "2000", **({"continue": cont} if cont else {})}
        page = api.request("GET", deployjobs_path(NAMESPACE), query=query)
        for item in page.get("items") or []:
            status = item.get("status") or {}
            phase = str(status.get("phase") or "")
            if status.get("run", 0) > 1:
                phase = f"{phase} (run {status['run']})"
            out[phase] = out.get(phase, 0) + 1
        cont = (page.get("metadata") or {}).get("continue") or ""
        if not cont:
            return out


def delete_all(api: Api, timeout: float = 1800) -> int:
    """Delete the namespace's DeployJobs (the running shards release them); how many there were."""
    count = sum(phases(api).values())
    deadline = time.monotonic() + timeout
    while phases(api):
        if time.monotonic() > deadline:
            raise TimeoutError(f"DeployJobs in {NAMESPACE} still there after {timeout:.0f}s")
        delete_collection(api, NAMESPACE)  # again while some are left: a request may time out
        time.sleep(5)
    return count


def run(config: ShardConfig) -> dict[str, Any]:
    began = time.monotonic()

    def say(message: str) -> None:
        print(f"==> [{time.strftime('%H:%M:%S')} +{time.monotonic() - began:5.0f}s] {message}",
              flush=True)  # fmt: skip

    results: dict[str, Any] = {
        "run_id": datetime.now(UTC).strftime("%Y%m%d-%H%M%S"),
        "machine": report.machine(),
        "config": {k: str(v) for k, v in vars(config).items()},
        "shards": {},
    }
    cluster: ClusterInfo = local_cluster()
    install_crds(cluster)
    api = Api(cluster.kubeconfig)
    logs = config.out_dir / f"shards-{results['run_id']}"
    shard_keys = keys(config.shards)
    operators: dict[str, Supervised] = {}
    with TimedWebhookPeer() as sink:
        try:
            others = foreign_operators(set(), server_of(cluster.kubeconfig))
            if others:
                say(f"warning: other deploybell operators (pids {others}) watch this cluster")
            try:
                api.request("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
            except ApiError as e:
                if e.status != 409:
                    raise
            for obj in (webhook_secret(sink), notification()):
                cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=json.dumps(obj))
            for key in shard_keys:
                name = key or "default"
                op = deploybell(cluster.kubeconfig, [], logs / f"{name}.log")
                op.argv += ["--cluster-name", f"bench-{name}"]
                if key:
                    op.argv += ["--shard-key", key]
                op.start()
                operators[name] = op
            if left := delete_all(api):
                say(f"deleted {left} DeployJobs of an earlier run first")
            say(f"{len(operators)} shards up; creating {config.jobs} DeployJobs")
            jobs = [
                shard_job(f"j{i:05d}", shard_keys[i % len(shard_keys)]) for i in range(config.jobs)
            ]
            created = time.monotonic()
            create(api, jobs)
            results["create_seconds"] = round(time.monotonic() - created, 1)
            say(f"created in {results['create_seconds']}s; waiting for every first run")
            counts = wait_until(
                "every DeployJob's first run finished",
                lambda: (c := phases(api)).get("Succeeded", 0) == config.jobs and c,
                timeout=600 + config.jobs * 0.2,
                interval=5,
            )
            results["first_runs_seconds"] = round(time.monotonic() - created, 1)
            say(
                f"all {config.jobs} runs Succeeded after {results['first_runs_seconds']}s: {counts}"
            )
            with UsageWindow({n: op.pid for n, op in operators.items()}) as window:
                time.sleep(config.idle_seconds)
            for index, name in enumerate(operators):
                count = sum(1 for i in range(config.jobs) if i % len(shard_keys) == index)
                results["shards"][name] = {"jobs": count, "idle": window.result.get(name, {})}
            for index, (name, op) in enumerate(operators.items()):
                key = shard_keys[index]
                results["shards"][name]["restart"] = restart(api, sink, op, name, key, say)
            results["after"] = phases(api)
            say(f"after the restarts: {results['after']} (a second run would show as 'run 2')")
            deleting = time.monotonic()
            delete_all(api)
            results["delete_seconds"] = round(time.monotonic() - deleting, 1)
            say(f"deleted every DeployJob (released by the shards) in {results['delete_seconds']}s")
        except Exception as e:  # reported with whatever was measured before it
            results["error"] = f"{type(e).__name__}: {e}"
            say(f"failed: {results['error']}")
        finally:
            for op in operators.values():
                if op.alive():
                    op.stop()
            api.close_watches()
    results["seconds"] = round(time.monotonic() - began, 1)
    return results


def restart(
    api: Api, sink: TimedWebhookPeer, op: Supervised, name: str, key: str, say: Any
) -> dict[str, Any]:
    probe = f"zz-restart-{name}"
    stop_seconds = op.stop()
    began = time.monotonic()
    op.start(wait=False)
    create(api, [probe_job(probe, key)])
    subject = f"{NAMESPACE}/{probe}"
    healthy_at = handled_at = None
    deadline = began + 600
    while handled_at is None or healthy_at is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"shard {name}: not handling events 600s after a restart")
        if healthy_at is None and op.healthy():
            healthy_at = time.monotonic()
        handled_at = sink.first(subject, "start", 1)
        time.sleep(0.02)
    rss = usage(op.pid).rss_bytes / MIB
    result = {
        "stop_seconds": round(stop_seconds, 2),
        "healthy_seconds": round(healthy_at - began, 2),
        "handling_seconds": round(handled_at - began, 2),
        "rss_mib_after_restart": round(rss, 1),
    }
    say(f"shard {name}: restart {result}")
    return result


def table(results: dict[str, Any]) -> str:
    rows = [
        "| shard | DeployJobs | RSS idle (MiB) | CPU idle (s) | restart: healthy / handling events "
        "(s) | RSS after restart (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, shard in results.get("shards", {}).items():
        idle, again = shard.get("idle") or {}, shard.get("restart") or {}
        rows.append(
            f"| {name} | {shard.get('jobs')} | {idle.get('rss_mib')} | {idle.get('cpu_seconds')} "
            f"| {again.get('healthy_seconds')} / {again.get('handling_seconds')} "
            f"| {again.get('rss_mib_after_restart')} |"
        )
    return "\n".join(rows)


def parse(argv: list[str] | None = None) -> ShardConfig:
    defaults = ShardConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.shards", description=__doc__)
    parser.add_argument("--shards", type=int, default=defaults.shards)
    parser.add_argument("--shard-jobs", dest="jobs", type=int, default=defaults.jobs)
    parser.add_argument("--idle-seconds", type=float, default=defaults.idle_seconds)
    parser.add_argument("--out-dir", type=Path, default=defaults.out_dir)
    args = parser.parse_args(argv)
    return ShardConfig(args.shards, args.jobs, args.idle_seconds, args.out_dir)


def main(argv: list[str] | None = None) -> int:
    config = parse(argv)
    results = run(config)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    path = config.out_dir / f"shards-{results['run_id']}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\n{table(results)}\n\n{json.dumps({k: v for k, v in results.items() if k != 'shards'})}"
          f"\nJSON: {path}", flush=True)  # fmt: skip
    return 1 if "error" in results else 0


if __name__ == "__main__":
    sys.exit(main())
