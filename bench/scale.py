"""The 10,000-DeployJob figures: the restart and idle RSS with that many DeployJobs in place.

Running 10,000 rollouts would take this machine most of an hour, and what an idle DeployJob
costs does not depend on how its last run went: the DeployJobs beyond those the bench really
ran are created while the operator is stopped, with its finalizer and a copy of a finished
run's status (renamed), as they would stand after their runs. The restart then finds them all
idle, as it finds the real ones. The bare kopf operator is stopped and started again too (after
deploybell's restart is measured), so that both idle figures come after a first listing of all
of them: a process that met them one watch event at a time holds less than one that listed
them (the allocator keeps the arenas of the listing's peak).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from bench import footprint
from bench import restart as restarts
from bench.cluster import ApiError, deployjobs_path
from bench.lab import Lab, bench_job, list_jobs, parallel
from bench.procstats import usage

LABEL = "scale"
FINALIZER = "deploybell.io/finalizer"


def measure(lab: Lab, namespace: str, total: int) -> dict[str, Any]:
    """`total` DeployJobs in `namespace` (those there ran); the restart, then idle."""
    real = [j["metadata"]["name"] for j in list_jobs(lab.api, namespace)]
    extra = [f"scale-{i:05d}" for i in range(total - len(real))]
    template = lab.api.request("GET", deployjobs_path(namespace, sorted(real)[0]))
    lab.say(f"scale: stopping the operator, adding {len(extra)} finished DeployJobs to {namespace}")
    lab.operator.stop()
    lab.bare.stop()
    began = time.monotonic()
    parallel(lambda name: create_finished(lab, namespace, name, template), extra)
    created_seconds = round(time.monotonic() - began, 1)
    lab.say(f"  created in {created_seconds}s; restarting with {total} DeployJobs in place")
    restart = restarts.restart(lab, namespace, total + 1, rep=total)
    lab.bare.start()
    bare_settled = settle(lab, "bare kopf")
    idle = footprint.idle(lab, total + 1)
    return {
        "jobs": total + 1,
        "ran": len(real) + 1,
        "created_seconds": created_seconds,
        "restart": restart,
        "bare_settled_seconds": bare_settled,
        "idle": idle,
    }


def settle(
    lab: Lab, what: str, quiet: float = 0.05, window: float = 5.0, limit: float = 300
) -> float:
    """Wait until the bare operator has worked through its first listing: less than `quiet` CPU
    seconds in a `window`; how long that took (an idle figure taken earlier would not be idle)."""
    began = time.monotonic()
    before = usage(lab.bare.pid).cpu_seconds
    while time.monotonic() - began < limit:
        time.sleep(window)
        now = usage(lab.bare.pid).cpu_seconds
        if now - before < quiet:
            break
        before = now
    seconds = round(time.monotonic() - began, 1)
    lab.say(f"  {what} settled after {seconds}s")
    return seconds


def create_finished(lab: Lab, namespace: str, name: str, template: dict[str, Any]) -> None:
    job = bench_job(name, LABEL)
    job["metadata"]["finalizers"] = [FINALIZER]
    created = lab.api.request("POST", deployjobs_path(namespace), job)
    status = renamed(template.get("status") or {}, template["metadata"]["name"], name)
    # The run deployed this object's own generation (the template may be on a later one).
    generation = int(created["metadata"]["generation"])
    status["observedGeneration"] = generation
    status["trigger"] = {**(status.get("trigger") or {}), "generation": generation}
    lab.api.request(
        "PATCH",
        deployjobs_path(namespace, name) + "/status",
        {"status": status},
        content_type="application/merge-patch+json",
    )


def renamed(status: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The status of DeployJob `old`, as DeployJob `new` (whose Deployment is `new`) has it."""
    out = copy.deepcopy(status)
    for resource in out.get("resources") or []:
        if resource.get("name") == old:
            resource["name"] = new
            resource["message"] = str(resource.get("message", "")).replace(old, new)
    for entry in [*(out.get("history") or []), out]:
        if isinstance(entry.get("message"), str):
            entry["message"] = entry["message"].replace(old, new)
    return out


def remove(lab: Lab, namespace: str) -> None:
    """The added DeployJobs go without the operator's help (they have nothing to cancel)."""
    lab.say("scale: removing the added DeployJobs")
    names = [j["metadata"]["name"] for j in list_jobs(lab.api, namespace, LABEL)]

    def drop(name: str) -> None:
        path = deployjobs_path(namespace, name)
        try:
            lab.api.request("PATCH", path, {"metadata": {"finalizers": None}},
                            content_type="application/merge-patch+json")  # fmt: skip
            lab.api.request("DELETE", path)
        except ApiError as e:
            if e.status != 404:
                raise

    parallel(drop, names)
