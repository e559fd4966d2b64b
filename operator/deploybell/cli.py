"""The `deploybell` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from deploybell.settings import Settings


def run_operator(args: argparse.Namespace) -> int:
    import asyncio

    import kopf

    import deploybell.handlers  # noqa: F401  (registers the handlers)

    env = Settings.from_env()
    settings = Settings(
        namespaces=tuple(args.namespace) or env.namespaces,
        default_service_account=args.default_service_account or env.default_service_account,
        failfast_grace_seconds=args.failfast_grace_seconds or env.failfast_grace_seconds,
        metrics_port=env.metrics_port,
        log_format=args.log_format or env.log_format,
    )
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    if not args.verbose:
        # kopf logs every handler invocation at INFO; with label-filtered watches on pods that is
        # noise. Warnings and deploybell's own INFO lines still show.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    asyncio.run(
        kopf.operator(
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            standalone=True,
            memo=kopf.Memo(settings=settings),
            liveness_endpoint=args.liveness or None,
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploybell", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: cluster-wide",
    )
    run.add_argument(
        "--default-service-account",
        default=None,
        help="impersonate this ServiceAccount for DeployJobs that name none",
    )
    run.add_argument("--failfast-grace-seconds", type=int, default=0)
    run.add_argument("--log-format", choices=("plain", "json"), default=None)
    run.add_argument(
        "--liveness",
        default=os.environ.get("DEPLOYBELL_LIVENESS", ""),
        help="kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz",
    )
    run.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_operator(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
