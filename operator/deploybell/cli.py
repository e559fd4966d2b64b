"""The `deploybell` command: the operator, and tools for files and Notifications."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import logging
import os
import sys
from collections.abc import Sequence

from deploybell.api.deployjob import MAX_HISTORY
from deploybell.settings import SHARD_KEY, Settings
from deploybell.tools import commands
from deploybell.tools.status import EXIT_CODES_HELP

# Flag → Settings field, for the flags that simply override the environment.
OVERRIDES = {
    "default_service_account": "default_service_account",
    "failfast_grace_seconds": "failfast_grace_seconds",
    "history_limit": "history_limit",
    "log_format": "log_format",
    "cluster_name": "cluster_name",
    "link_template": "link_template",
    "smtp_host": "smtp_host",
    "smtp_port": "smtp_port",
    "smtp_from": "smtp_from",
    "smtp_tls": "smtp_tls",
    "metrics_port": "metrics_port",
    "shard_key": "shard_key",
    "peering_lifetime": "peering_lifetime_seconds",
}


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment first (DEPLOYBELL_*), flags on top."""
    env = Settings.from_env()
    changes = {field: getattr(args, flag) for flag, field in OVERRIDES.items()
               if getattr(args, flag) is not None}  # fmt: skip
    if args.namespace:
        changes["namespaces"] = tuple(args.namespace)
    return dataclasses.replace(env, **changes)


def run_operator(args: argparse.Namespace) -> int:
    import asyncio

    import kopf

    import deploybell.handlers  # noqa: F401  (registers the handlers)

    settings = settings_from(args)
    if settings.shard_key and not SHARD_KEY.fullmatch(settings.shard_key):
        print(
            "error: the shard key (--shard-key, DEPLOYBELL_SHARD_KEY) must be a label value, "
            f"got {settings.shard_key!r}",
            file=sys.stderr,
        )
        return 2
    if not 1 <= settings.history_limit <= MAX_HISTORY:
        print(
            f"error: the history limit (--history-limit, DEPLOYBELL_HISTORY_LIMIT) must be "
            f"between 1 and {MAX_HISTORY}, got {settings.history_limit}",
            file=sys.stderr,
        )
        return 2
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
            standalone=not args.peering,
            peering_name=args.peering or None,
            priority=args.priority,
            memo=kopf.Memo(settings=settings),
            liveness_endpoint=args.liveness or None,
        )
    )
    return 0


def shard_key(value: str) -> str:
    if not SHARD_KEY.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a label value (letters, digits, '-', '_', '.'; at most 63, "
            "starting and ending with a letter or digit)"
        )
    return value


def add_run_flags(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: cluster-wide",
    )
    run.add_argument(
        "--default-service-account",
        help="impersonate this ServiceAccount for DeployJobs that name none",
    )
    run.add_argument(
        "--failfast-grace-seconds",
        type=int,
        help="how long new pods may crash-loop before the run fails (default 10)",
    )
    run.add_argument(
        "--history-limit",
        type=int,
        help=f"runs kept in each DeployJob's status.history, 1 to {MAX_HISTORY} (default 10); "
        "kubectl deploybell dora computes from them",
    )
    run.add_argument("--log-format", choices=("plain", "json"))
    run.add_argument("--cluster-name", help="the cluster's name, shown in every message")
    run.add_argument(
        "--link-template",
        help="a link in every message, e.g. https://dash/{namespace}/{job}?run={run}",
    )
    run.add_argument("--smtp-host")
    run.add_argument("--smtp-port", type=int)
    run.add_argument("--smtp-from")
    run.add_argument("--smtp-tls", choices=("starttls", "tls", "none"))
    run.add_argument("--metrics-port", type=int, help="serve Prometheus metrics (0: off)")
    run.add_argument(
        "--shard-key",
        type=shard_key,
        help="handle only DeployJobs labelled sharding.deploybell.io/key=KEY; without it, only "
        "those without the label (the API server filters the watch)",
    )
    run.add_argument(
        "--peering-lifetime",
        type=int,
        help="seconds a silent peer (e.g. SIGKILLed) still counts before its standby takes over "
        "(kopf peering; default 60)",
    )
    run.add_argument(
        "--liveness",
        default=os.environ.get("DEPLOYBELL_LIVENESS", ""),
        help="kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz",
    )
    run.add_argument(
        "--peering",
        default=os.environ.get("DEPLOYBELL_PEERING", ""),
        help="kopf peering object name: with several replicas only the one with the "
        "highest priority acts (needs kopf's peering CRDs); default: standalone",
    )
    run.add_argument(
        "--priority",
        type=int,
        default=int(os.environ.get("DEPLOYBELL_PRIORITY", "0")),
        help="peering priority of this instance",
    )
    run.add_argument("-v", "--verbose", action="store_true")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploybell", description=__doc__)
    parser.add_argument(
        "--version",
        action="version",
        version=importlib.metadata.version("deploybell"),
        help="print the installed package's version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_flags(sub.add_parser("run", help="run the operator"))
    commands.add_validate(
        sub.add_parser(
            "validate",
            help="check DeployJob/Notification files offline (exit 1 on any error)",
            description="Check DeployJob and Notification YAML against the CRD schemas and the "
            "operator's own rules, offline. Prints `file:line: error|warning: ...`; exits 1 on "
            "any error, 0 otherwise (warnings alone: 0).",
        )
    )
    commands.add_render(
        sub.add_parser(
            "render",
            help="print what each provider would send for a sample run (no network)",
            description="Print what each Notification in the files would send for a sample run "
            "of team-a/web, per recipient, using its template if it has one. No network.",
        )
    )
    commands.add_notify_test(
        sub.add_parser(
            "notify-test",
            help="send a test message through an existing Notification",
            description="Send a message labelled as a test through an existing Notification, "
            "reading it and its Secret from the cluster ($KUBECONFIG), and report each "
            "recipient's answer.",
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_operator(args)
    return int(args.command_fn(args))


if __name__ == "__main__":
    sys.exit(main())
