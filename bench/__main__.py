"""`make bench`: deploybell's latency, kubectl comparison, footprint, API load and restart.

python -m bench                          # the full run (N = 10, 100, 1000), ~10-15 min
python -m bench --sizes 10 --reps 1 --idle-seconds 5 --active 5 --restart-reps 1
python -m bench --shards 4 --shard-jobs 10000   # sharding: each shard's RSS and restart
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import report, shards
from bench.lab import Config
from bench.run import run


def parse(argv: list[str] | None = None) -> Config:
    defaults = Config()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, defaults.sizes)),
        help="DeployJobs created at once, comma-separated (default %(default)s)",
    )
    parser.add_argument("--reps", type=int, default=defaults.reps)
    parser.add_argument("--max-repeated-size", type=int, default=defaults.max_repeated_size)
    parser.add_argument("--kubectl-sample", type=int, default=defaults.kubectl_sample)
    parser.add_argument("--idle-seconds", type=float, default=defaults.idle_seconds)
    parser.add_argument("--active", type=int, default=defaults.active)
    parser.add_argument("--restart-reps", type=int, default=defaults.restart_reps)
    parser.add_argument("--quiet-seconds", type=float, default=defaults.quiet_seconds)
    parser.add_argument(
        "--operator-threads",
        type=int,
        default=0,
        help="what-if: run the operator with this many threads in asyncio's default executor",
    )
    parser.add_argument("--scale-jobs", type=int, default=defaults.scale_jobs)
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="what-if: the operator with tracemalloc; logs-*/memory.txt says what holds memory",
    )
    parser.add_argument(
        "--flux-sizes",
        default=",".join(map(str, defaults.flux_sizes)),
        help="Deployments in one Flux Kustomization, comma-separated; empty: no Flux "
        "(default %(default)s)",
    )
    parser.add_argument("--out-dir", type=Path, default=defaults.out_dir)
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="do not record the operator with py-spy during the largest size's run",
    )
    args = parser.parse_args(argv)
    return Config(
        sizes=tuple(int(s) for s in args.sizes.split(",") if s.strip()),
        reps=args.reps,
        max_repeated_size=args.max_repeated_size,
        kubectl_sample=args.kubectl_sample,
        idle_seconds=args.idle_seconds,
        active=args.active,
        restart_reps=args.restart_reps,
        quiet_seconds=args.quiet_seconds,
        operator_threads=args.operator_threads,
        scale_jobs=args.scale_jobs,
        trace_memory=args.trace_memory,
        flux_sizes=tuple(int(s) for s in args.flux_sizes.split(",") if s.strip()),
        out_dir=args.out_dir,
        profile=args.profile,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a == "--shards" or a.startswith("--shards=") for a in argv):
        return shards.main(argv)  # the sharding bench (bench/shards.py)
    config = parse(argv)
    results = run(config)
    path = report.write_json(results, config.out_dir)
    print("\n" + report.table(results) + f"\n\nJSON: {path}", flush=True)
    if "error" in results:
        print(f"bench failed: {results['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
