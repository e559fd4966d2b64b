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
import ctypes
import ctypes.util
import os
import re
import runpy
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


class MallInfo2(ctypes.Structure):
    """glibc's `struct mallinfo2` (glibc >= 2.33)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def glibc_heap() -> str:
    """The C allocator's view: bytes in use, free in its heaps, and in big mmapped blocks."""
    name = ctypes.util.find_library("c")
    try:
        mallinfo2 = ctypes.CDLL(name).mallinfo2 if name else None
    except (OSError, AttributeError):
        mallinfo2 = None
    if mallinfo2 is None:
        return "glibc heap: mallinfo2 not available"
    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return (
        f"glibc heap: in use {info.uordblks / MIB:.1f} MiB, free in heaps {info.fordblks / MIB:.1f}"
        f" MiB (heaps {info.arena / MIB:.1f} MiB), mmapped blocks {info.hblkhd / MIB:.1f} MiB"
    )


def pymalloc() -> str:
    """Python's small-object allocator: its 1 MiB arenas and how full they are.

    `sys._debugmallocstats` writes to the C stderr only, so fd 2 goes to a file meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile("w+") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read()

    def number(label: str) -> int:
        found = re.search(rf"{re.escape(label)}\s*=\s*([\d,]+)", text)
        return int(found.group(1).replace(",", "")) if found else 0

    arenas = number("# arenas allocated current")
    if not arenas:  # tracemalloc hooks the allocator: CPython then prints no pymalloc figures
        return "pymalloc: no figures while tracemalloc runs (RSS - glibc heap - mmapped ~ it)"
    return (
        f"pymalloc: {arenas} arenas ({arenas * 1024 * 1024 / MIB:.0f} MiB, highwater "
        f"{number('# arenas highwater mark')}), in allocated blocks "
        f"{number('# bytes in allocated blocks') / MIB:.1f} MiB, free blocks "
        f"{number('# bytes in available blocks') / MIB:.1f} MiB, unused pools "
        f"{number('unused pools * 16384 bytes') / MIB:.1f} MiB"
    )


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
        f"{current / MIB:.1f} MiB (peak {peak / MIB:.1f}); RSS not traced {untraced:.1f} MiB, "
        f"of which tracemalloc's own {tracemalloc.get_tracemalloc_memory() / MIB:.1f} MiB",
        pymalloc(),
        glibc_heap(),
        "grown since the first report (10 s after start), by file:",
        *(
            f"{s.size_diff / MIB:+8.2f} MiB ({s.size / MIB:7.2f}) {s.count_diff:+8d} blocks  "
            f"{s.traceback}"
            for s in grown[:30]
        ),
        "largest now, by line:",
        *(
            f"{s.size / MIB:8.2f} MiB {s.count:8d} blocks  {s.traceback}"
            for s in snapshot.statistics("lineno")[:20]
        ),
    ]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    with out.with_name(out.stem + "-history.txt").open("a") as history:
        history.write(text + "\n")


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
