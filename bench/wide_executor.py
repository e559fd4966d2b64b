"""The unmodified operator with a wider thread pool: `python -m bench.wide_executor 32 run ...`.

deploybell's Kubernetes calls run in asyncio's default executor, which has min(32, cores + 4)
threads: 6 on 2 cores. This what-if (`python -m bench --operator-threads 32`) gives the event
loop a default executor of the given size and then runs `deploybell` as usual, to measure what
more client concurrency would buy without changing the operator.
"""

from __future__ import annotations

import asyncio
import runpy
import sys
from concurrent.futures import ThreadPoolExecutor


class WidePolicy(asyncio.DefaultEventLoopPolicy):
    def __init__(self, threads: int) -> None:
        super().__init__()
        self.threads = threads

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        loop.set_default_executor(ThreadPoolExecutor(self.threads, thread_name_prefix="asyncio"))
        return loop


def main() -> None:
    threads, *argv = sys.argv[1:]
    asyncio.set_event_loop_policy(WidePolicy(int(threads)))
    sys.argv = ["deploybell", *argv]
    runpy.run_module("deploybell", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
