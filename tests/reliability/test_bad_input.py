"""Bad input: each malformed resource in corpus/ gets a clear answer; the operator stays calm.

The corpus is written by hack/gen-corpus.py; each file's first line says what must happen.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import wait_dj
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.usefixtures("operator")
CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.yaml"))


def expectation(path: Path) -> tuple[str, str, str]:
    """(kind of answer, reason or "", text fragment) from the file's first line."""
    words = path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect: ").split(" ")
    kind = words[0]
    if kind == "failed":
        reason = words[1] if len(words) > 1 else ""
        return kind, reason, " ".join(words[2:])
    return kind, "", " ".join(words[1:])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ready_condition(cluster: ClusterAccess, ns: str) -> dict[str, Any] | None:
    obj = cluster.get("notifications.deploybell.io", "a", ns) or {}
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), None
    )


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 50


@pytest.fixture(scope="module")
def leftovers(cluster: ClusterAccess) -> Iterator[list[str]]:
    """The corpus stays in the cluster until the module ends (the calm test needs it there)."""
    namespaces: list[str] = []
    yield namespaces
    for ns in namespaces:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_malformed_input_gets_a_clear_answer(
    cluster: ClusterAccess, path: Path, leftovers: list[str]
) -> None:
    kind, reason, fragment = expectation(path)
    ns = f"bad-{path.stem[:40]}-{uuid.uuid4().hex[:4]}".lower().replace("_", "-")
    cluster.kubectl("create", "namespace", ns)
    leftovers.append(ns)
    proc = subprocess.run(
        [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig),
         "apply", "-n", ns, "-f", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if kind == "rejected":
        assert proc.returncode != 0, f"{path.name} was accepted: {proc.stdout}"
        assert fragment in proc.stderr, proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    if kind == "failed":
        status = wait_dj(cluster, ns, "a", "Failed", lambda s: s.get("phase") == "Failed")["status"]
        if reason:
            assert status["reason"] == reason, status
        assert fragment in status["message"], status["message"]
        stalled = {c["type"]: c["status"] for c in status["conditions"]}["Stalled"]
        assert stalled == "True"
    else:
        wait_for(
            f"Notification not Ready with {fragment!r}",
            lambda: (
                (c := ready_condition(cluster, ns))
                and c["status"] == "False"
                and fragment in c["message"]
            ),
        )


def test_operator_stays_calm_with_bad_resources_around(
    cluster: ClusterAccess, operator: OperatorProcess, leftovers: list[str]
) -> None:
    """No hot loop: with failed jobs and broken Notifications sitting there, CPU is near idle."""
    assert operator.proc is not None
    pid = operator.proc.pid
    before, began = cpu_seconds(pid), time.monotonic()
    wait_for("a 10 s window", lambda: time.monotonic() - began >= 10, timeout=15, interval=0.5)
    used = cpu_seconds(pid) - before
    print(f"\nidle CPU with {len(leftovers)} malformed resources applied: {used:.2f}s over 10s")
    assert len(leftovers) == len(CORPUS)
    assert used < 1.5, f"operator used {used:.2f} CPU-seconds in 10 s while idle"
