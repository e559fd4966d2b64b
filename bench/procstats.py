"""RSS and CPU seconds of processes, from /proc, over a window of time."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Usage:
    rss_bytes: int
    cpu_seconds: float  # user + system, since the process started


def usage(pid: int) -> Usage:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after it are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime, rss_pages = int(fields[11]), int(fields[12]), int(fields[21])
    return Usage(rss_pages * PAGE, (utime + stime) / TICKS)


class UsageWindow:
    """CPU seconds spent and RSS (at the end, and the peak of samples) during a `with` block."""

    def __init__(self, pids: Mapping[str, int], interval: float = 0.25) -> None:
        self.pids = dict(pids)
        self.interval = interval
        self._start: dict[str, Usage] = {}
        self._peak: dict[str, int] = {}
        self.result: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="usage", daemon=True)

    def __enter__(self) -> UsageWindow:
        self._start = {name: usage(pid) for name, pid in self.pids.items()}
        self._peak = {name: u.rss_bytes for name, u in self._start.items()}
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            for name, pid in self.pids.items():
                try:
                    self._peak[name] = max(self._peak[name], usage(pid).rss_bytes)
                except OSError:
                    continue

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        for name, pid in self.pids.items():
            try:
                end = usage(pid)
            except OSError:
                continue
            self.result[name] = {
                "cpu_seconds": round(end.cpu_seconds - self._start[name].cpu_seconds, 2),
                "rss_mib": round(end.rss_bytes / MIB, 1),
                "rss_peak_mib": round(max(self._peak[name], end.rss_bytes) / MIB, 1),
            }
