"""`make demo`: deploybell's whole job on the local cluster, with a readable timeline.

Starts (or reuses) the local cluster, installs the CRDs, starts the operator, applies
examples/demo/ (one DeployJob that succeeds, one that fails, one that is canceled), prints each
notification as it is delivered, then `kubectl get dj,dbn` and a summary. Exit code 0 only when
every expected notification was delivered. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack" / "cluster"))
import localcluster  # noqa: E402

NAMESPACE = "deploybell-demo"
# (job, run, event, notification) that must be delivered for the demo to pass.
EXPECTED = {
    ("web", 1, "start", "team-webhook"),
    ("web", 1, "success", "team-webhook"),
    ("web", 1, "success", "team-email"),
    ("api", 1, "start", "team-webhook"),
    ("api", 1, "failure", "team-webhook"),
    ("api", 1, "failure", "team-email"),
    ("batch", 1, "start", "team-webhook"),
    ("batch", 1, "cancel", "team-webhook"),
}
DEADLINE_SECONDS = 120


def say(message: str) -> None:
    print(f"==> [{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Demo:
    def __init__(self) -> None:
        self.operator: subprocess.Popen[bytes] | None = None
        self.kubeconfig = Path()
        self.bins = Path()
        self.log = ROOT / ".local" / "demo-operator.log"

    def kubectl(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            [str(self.bins / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def setup(self) -> None:
        say("building/locating the local cluster binaries (cached after the first run)")
        self.bins = localcluster.bin_dir()
        say("starting the local cluster")
        cluster = localcluster.up()
        self.kubeconfig = cluster.kubeconfig
        say("installing the CRDs")
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        self.kubectl(
            "wait",
            "--for=condition=Established",
            "crd/deployjobs.deploybell.io",
            "crd/notifications.deploybell.io",
            "--timeout=60s",
        )
        if self.kubectl("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name"):
            say(f"removing the previous demo namespace {NAMESPACE}")
            self.kubectl("delete", "namespace", NAMESPACE, "--timeout=120s")

    def start_operator(self) -> None:
        say(f"starting the operator (log: {self.log.relative_to(ROOT)})")
        self.log.parent.mkdir(exist_ok=True)
        env = {"KUBECONFIG": str(self.kubeconfig), "PATH": "/usr/bin:/bin"}
        self.operator = subprocess.Popen(
            [sys.executable, "-m", "deploybell", "run"],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )

    def apply_examples(self) -> None:
        say("applying examples/demo/")
        for path in sorted((ROOT / "examples" / "demo").glob("*.yaml")):
            self.kubectl("apply", "-f", str(path))

    def jobs(self) -> list[dict[str, Any]]:
        out = self.kubectl("get", "deployjobs", "-n", NAMESPACE, "-o", "json")
        return list(json.loads(out)["items"])

    def watch(self) -> set[tuple[str, int, str, str]]:
        say("timeline (time, notification, job, event: message)")
        seen: set[tuple[str, int, str, str]] = set()
        canceled = False
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline and not seen.issuperset(EXPECTED):
            for job in self.jobs():
                name, status = job["metadata"]["name"], job.get("status") or {}
                for entry in status.get("notifications") or []:
                    key = (name, entry["run"], entry["event"], entry["notification"])
                    if entry.get("state") == "Sent" and key not in seen:
                        seen.add(key)
                        stamp = entry.get("sentAt", "")[11:19]
                        detail = status.get("message", "") if entry["event"] != "start" else ""
                        print(
                            f"  {stamp}  {entry['notification']:<13} {name:<6} "
                            f"{entry['event']:<8} {detail}",
                            flush=True,
                        )
                if name == "batch" and status.get("phase") == "Deploying" and not canceled:
                    self.kubectl(
                        "annotate",
                        "dj/batch",
                        "-n",
                        NAMESPACE,
                        "deploybell.io/cancel=demo",
                        "--overwrite",
                    )
                    canceled = True
            time.sleep(0.5)
        return seen

    def stop(self) -> None:
        if self.operator and self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            try:
                self.operator.wait(30)
            except subprocess.TimeoutExpired:
                self.operator.kill()

    def run(self) -> int:
        began = time.monotonic()
        try:
            self.setup()
            self.start_operator()
            self.apply_examples()
            seen = self.watch()
            print(self.kubectl("get", "dj,dbn", "-n", NAMESPACE), flush=True)
        finally:
            self.stop()
        missing = EXPECTED - seen
        took = time.monotonic() - began
        if missing:
            say(f"FAILED: {len(missing)} expected notifications never came: {sorted(missing)}")
            return 1
        say(
            f"OK: {len(seen)} notifications delivered for 3 DeployJobs in {took:.0f}s "
            "(1 succeeded, 1 failed, 1 canceled); the cluster keeps running (make cluster-down)"
        )
        return 0


def main() -> int:
    demo = Demo()
    try:
        return demo.run()
    except KeyboardInterrupt:
        demo.stop()
        say("interrupted; stopping the local cluster")
        localcluster.down()
        return 130


if __name__ == "__main__":
    sys.exit(main())
