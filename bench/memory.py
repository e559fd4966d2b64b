"""The unmodified operator with tracemalloc on: `python -m bench.memory OUT run ...`.

`python -m bench --trace-memory` runs deploybell this way: every 10 s (and at exit) OUT gets the
process's RSS, what Python's allocator traces, and the 30 files whose allocations grew most
since the first report (10 s after the start), so that what a burst leaves behind shows, and
the RSS that no Python object explains (allocator arenas, fragmentation, C libraries).
tracemalloc costs CPU and memory of its own: the figures of such a run are for this, not for
the latency or footprint tables.
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


def report(out: Path, first: list[tracemalloc.Snapshot]) -> None:
    """RSS and traced totals; the 30 sites that grew most since the first report (by file)."""
    rss = int(Path("/proc/self/statm").read_text().split()[1]) * PAGE
    current, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    if not first:
        first.append(snapshot)
    grown = snapshot.compare_to(first[0], "filename")
    untraced = (rss - current) / MIB
    lines = [
        f"at {time.strftime('%H:%M:%S')}: RSS {rss / MIB:.1f} MiB; traced by tracemalloc "
        f"{current / MIB:.1f} MiB (peak {peak / MIB:.1f}); RSS not traced {untraced:.1f} MiB",
        "grown since the first report (10 s after start), by file:",
        *(
            f"{s.size_diff / MIB:+8.2f} MiB ({s.size / MIB:7.2f}) {s.count_diff:+8d} blocks  "
            f"{s.traceback}"
            for s in grown[:30]
        ),
    ]
    out.write_text("\n".join(lines) + "\n")


def main() -> None:
    out, *argv = sys.argv[1:]
    path = Path(out)
    tracemalloc.start(1)

    first: list[tracemalloc.Snapshot] = []

    def every_ten_seconds() -> None:
        while True:
            time.sleep(10)
            report(path, first)

    threading.Thread(target=every_ten_seconds, name="memory report", daemon=True).start()
    atexit.register(report, path, first)
    sys.argv = ["deploybell", *argv]
    runpy.run_module("deploybell", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
