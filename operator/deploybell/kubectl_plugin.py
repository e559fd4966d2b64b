"""kubectl deploybell: the status of DeployJobs, cancel and redeploy, DORA figures, and
Notification tests."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from deploybell.tools import commands
from deploybell.tools.status import EXIT_CODES_HELP


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="kubectl deploybell",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands.add_namespace(root)
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            description=description or help,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    commands.add_status(
        command(
            "status",
            "phase, reason and message of the latest run; resources, last runs, notifications",
            "Show a DeployJob's latest run: phase, reason, message, its resources, failing "
            "pods, the last runs and the notification ledger. The exit code tells the phase.",
        )
    )
    commands.add_nudge(
        command(
            "cancel",
            "cancel the run in flight (annotation deploybell.io/cancel)",
            "Cancel the run in flight by setting the annotation deploybell.io/cancel to a fresh "
            "value. With --wait, exit 0 once the run is Canceled, 1 when it ended otherwise.",
        ),
        "cancel",
    )
    commands.add_nudge(
        command(
            "redeploy",
            "start a new run with the same spec (annotation deploybell.io/redeploy)",
            "Start a new run by setting the annotation deploybell.io/redeploy to a fresh value. "
            "With --wait, wait for that run to end and exit as `status` does.",
        ),
        "redeploy",
    )
    commands.add_history(command("history", "the last runs, newest first"))
    commands.add_dora(
        command(
            "dora",
            "DORA figures per environment: deployment frequency, lead time, change failure "
            "rate, time to restore",
            "The four DORA figures per environment, from the DeployJobs' run history "
            "(status.history): successful runs per day, lead time for changes (p50, from "
            "spec.source.committedAt), change failure rate (failed / (succeeded + failed)) and "
            "time to restore (p50 and mean, from the first failure after a success to the next "
            "success). It says how many runs the history covers and which figures rest on too "
            "few samples.",
        )
    )
    commands.add_notify_test(
        command(
            "test",
            "send a test message through a Notification (= deploybell notify-test)",
            "Send a message labelled as a test through an existing Notification and report "
            "each recipient's answer; exit 0 when every recipient got it.",
        )
    )
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.command_fn(args))


if __name__ == "__main__":
    sys.exit(main())
