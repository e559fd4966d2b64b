"""Where the operator's time goes: py-spy attached to the running process, summarized."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profile:
    """`with Profile(pid, out):` records collapsed stacks (py-spy's raw format) into `out`."""

    def __init__(self, pid: int, out: Path, rate: int = 25) -> None:
        self.pid = pid
        self.out = out
        self.rate = rate
        self.proc: subprocess.Popen[bytes] | None = None
        self.error = ""

    def __enter__(self) -> Profile:
        exe = py_spy()
        if exe is None:
            self.error = "py-spy is not installed (pip install -e '.[dev]')"
            return self
        self.out.parent.mkdir(parents=True, exist_ok=True)
        argv = [exe, "record", "--pid", str(self.pid), "--rate", str(self.rate)]
        argv += ["--format", "raw", "--output", str(self.out), "--nonblocking", "--threads"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            self.error = err.decode(errors="replace")[-500:]


def frame_name(frame: str) -> str:
    """`run (deploybell/deploy/runner.py:12)` → `run (deploybell/deploy/runner.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.", "operator/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "lib/python3.":
                path = path.split("/", 1)[-1]
    return f"{name} ({path})"


# Frames on every stack of their thread (the event loop, thread pools, the entry point): their
# inclusive share says nothing, so they are left out of it.
PLUMBING = (
    "<frozen runpy>",
    "asyncio/",
    "threading.py",
    "concurrent/futures/",
    "deploybell/cli.py",
    "deploybell/__main__.py",
    "kopf/_cogs/aiokits/aiotasks.py",
)


def summarize(raw: Path, top: int = 20) -> dict[str, Any]:
    """Share of samples per thread, and per function: inclusive (anywhere on the stack, the
    event loop's plumbing left out) and self (on top of the stack)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        total += count
        threads[thread.split(": ", 1)[-1]] += count
        names = [frame_name(f) for f in frames] or [thread]
        for name in set(names):
            if not any(p in name for p in PLUMBING):
                inclusive[name] += count
        own[names[-1]] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "threads": shares(threads) if total else [],
        "inclusive_percent": shares(inclusive) if total else [],
        "self_percent": shares(own) if total else [],
    }
