"""The subcommands shared by `deploybell` and `kubectl deploybell`: flags and what they run."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from deploybell.api.constants import ANNOTATION_CANCEL, ANNOTATION_REDEPLOY, EVENTS
from deploybell.api.errors import SpecError
from deploybell.clients.kube import KubeClient
from deploybell.deploy.run import IN_FLIGHT, Phase
from deploybell.notify import providers
from deploybell.notify.providers.base import SmtpDefaults
from deploybell.settings import Settings
from deploybell.tools import cluster, dora, jobs, preview, schema, status
from deploybell.tools.documents import Finding, load
from deploybell.tools.notify_test import notify_test
from deploybell.tools.status import Exit
from deploybell.tools.validate import check_document, validate_files

# --- validate ------------------------------------------------------------------------------------


def add_validate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="YAML files (multi-document)")
    parser.set_defaults(command_fn=validate_command)


def validate_command(args: argparse.Namespace) -> int:
    try:
        findings, checked = validate_files(args.files)
    except schema.SchemaUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    print(
        f"{len(args.files)} file(s), {checked} deploybell object(s): "
        f"{errors} error(s), {warnings} warning(s)",
        file=sys.stderr,
    )
    return 1 if errors else 0


# --- render --------------------------------------------------------------------------------------


def add_render(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="files holding Notifications")
    parser.add_argument(
        "--event", choices=EVENTS, default="failure", help="the run event (default: failure)"
    )
    parser.add_argument("--type", choices=providers.NAMES, help="only Notifications of this type")
    parser.set_defaults(command_fn=render_command)


def render_command(args: argparse.Namespace) -> int:
    from deploybell.notify.model import sample

    message = sample(args.event)
    sender = Settings.from_env().smtp_from
    problems: list[Finding] = []
    shown = 0
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as f:
                documents, errors = load(path, f.read())
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Finding("error", path, 0, f"cannot read: {e}"))
            continue
        problems.extend(errors)
        for document in documents:
            if not document.ours or document.kind != "Notification":
                continue
            found = [f for f in check_document(document) if f.severity == "error"]
            if found:
                problems.extend(found)
                continue
            spec = providers.parse(document.body["spec"])
            if args.type and spec.type != args.type:
                continue
            sys.stdout.write(preview.preview(document.name, spec, message, sender))
            shown += 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if not shown and not problems:
        which = f"Notification of type {args.type}" if args.type else "Notification"
        print(f"error: no {which} in {', '.join(args.files)}", file=sys.stderr)
    return 1 if problems or not shown else 0


# --- notify-test / kubectl deploybell test -------------------------------------------------------


def add_namespace(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        default=argparse.SUPPRESS if suppress else None,
        help="namespace (default: the kubeconfig context's)",
    )


def add_notify_test(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NOTIFICATION", help="the Notification's name")
    add_namespace(parser, suppress=True)
    parser.add_argument(
        "--event",
        choices=EVENTS,
        default="success",
        help="the event to word it as (default: success)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each provider (default 60)"
    )
    parser.add_argument("--cluster-name", help="named in the message (DEPLOYBELL_CLUSTER_NAME)")
    parser.add_argument("--smtp-host", help="e-mail: SMTP server (DEPLOYBELL_SMTP_HOST)")
    parser.add_argument("--smtp-port", type=int, help="e-mail: SMTP port (DEPLOYBELL_SMTP_PORT)")
    parser.add_argument("--smtp-from", help="e-mail: sender (DEPLOYBELL_SMTP_FROM)")
    parser.add_argument("--smtp-tls", choices=("starttls", "tls", "none"))
    parser.set_defaults(command_fn=notify_test_command)


def notify_test_command(args: argparse.Namespace) -> int:
    env = Settings.from_env()
    namespace = _namespace(args)
    smtp = SmtpDefaults(
        host=args.smtp_host or env.smtp_host,
        port=args.smtp_port or env.smtp_port,
        sender=args.smtp_from or env.smtp_from,
        tls=args.smtp_tls or env.smtp_tls,
        username=env.smtp_username,
        password=env.smtp_password,
    )

    async def send(kube: KubeClient) -> int:
        try:
            report = await notify_test(
                kube,
                namespace,
                args.name,
                event=args.event,
                smtp=smtp,
                cluster=args.cluster_name or env.cluster_name,
                send_timeout=args.timeout,
            )
        except SpecError as e:
            print(f"error: Notification {namespace}/{args.name} is invalid: {e}", file=sys.stderr)
            return int(Exit.FAILED)
        print("\n".join(report.lines()))
        return int(Exit.OK if report.delivered else Exit.FAILED)

    return cluster.run(send)


# --- kubectl deploybell status / history ---------------------------------------------------------


def add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=("text", "json", "yaml"), default="text", help="output format"
    )


def add_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the DeployJob's name")
    add_namespace(parser, suppress=True)
    add_output(parser)
    parser.set_defaults(command_fn=status_command)


def status_command(args: argparse.Namespace) -> int:
    async def show(kube: KubeClient) -> int:
        job = await jobs.get_job(kube, _namespace(args), args.name)
        _emit(args.output, status.summary(job), status.status_text(job))
        return int(status.exit_code(job))

    return cluster.run(show)


def add_history(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the DeployJob's name")
    add_namespace(parser, suppress=True)
    add_output(parser)
    parser.set_defaults(command_fn=history_command)


def history_command(args: argparse.Namespace) -> int:
    async def show(kube: KubeClient) -> int:
        job = await jobs.get_job(kube, _namespace(args), args.name)
        _emit(args.output, status.runs(job), status.history_text(job))
        return int(Exit.OK)

    return cluster.run(show)


# --- kubectl deploybell dora ---------------------------------------------------------------------


def add_dora(parser: argparse.ArgumentParser) -> None:
    add_namespace(parser, suppress=True)
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="the DeployJobs of every namespace"
    )
    parser.add_argument(
        "--since",
        type=_since,
        default="30d",
        help="the window: runs that finished this long ago or later (30d, 12h, 2w; default 30d)",
    )
    add_output(parser)
    parser.set_defaults(command_fn=dora_command)


def dora_command(args: argparse.Namespace) -> int:
    namespace = None if args.all_namespaces else _namespace(args)

    async def show(kube: KubeClient) -> int:
        found = await jobs.list_jobs(kube, namespace)
        until = datetime.now(UTC)
        scope = f"namespace {namespace}" if namespace else "all namespaces"
        data = dora.report(found, until - args.since, until, scope)
        _emit(args.output, data, dora.report_text(data))
        return int(Exit.OK)

    return cluster.run(show)


def _since(text: str) -> timedelta:
    try:
        return dora.parse_since(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# --- kubectl deploybell cancel / redeploy --------------------------------------------------------


def add_nudge(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("name", metavar="NAME", help="the DeployJob's name")
    add_namespace(parser, suppress=True)
    parser.add_argument("--wait", action="store_true", help="wait until the run has ended")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds --wait waits (default 600)"
    )
    parser.set_defaults(command_fn=cancel_command if command == "cancel" else redeploy_command)


def cancel_command(args: argparse.Namespace) -> int:
    namespace = _namespace(args)

    async def cancel(kube: KubeClient) -> int:
        job = await jobs.get_job(kube, namespace, args.name)
        state = job.get("status") or {}
        if not status.in_flight(job):
            phase = state.get("phase") or "no run yet"
            print(f"DeployJob {namespace}/{args.name} has no run in flight ({_run(state)}{phase})")
            return int(Exit.OK)
        token = jobs.fresh_token()
        await jobs.annotate(kube, namespace, args.name, ANNOTATION_CANCEL, token)
        print(f"cancel requested for {_run(state)}of DeployJob {namespace}/{args.name}")
        if not args.wait:
            return int(Exit.OK)
        ended = await jobs.wait_for(
            kube, namespace, args.name, lambda s: s.get("phase") not in IN_FLIGHT, args.timeout
        )
        if ended is None:
            return _timed_out(args.timeout)
        print(status.status_text(ended), end="")
        return int(Exit.OK if ended["status"].get("phase") == Phase.CANCELED else Exit.FAILED)

    return cluster.run(cancel)


def redeploy_command(args: argparse.Namespace) -> int:
    namespace = _namespace(args)

    async def redeploy(kube: KubeClient) -> int:
        token = jobs.fresh_token()
        await jobs.annotate(kube, namespace, args.name, ANNOTATION_REDEPLOY, token)
        print(f"redeploy requested for DeployJob {namespace}/{args.name}")
        if not args.wait:
            return int(Exit.OK)

        def ended(state: Mapping[str, Any]) -> bool:
            started = (state.get("trigger") or {}).get("redeploy") == token
            return started and state.get("phase") not in IN_FLIGHT

        job = await jobs.wait_for(kube, namespace, args.name, ended, args.timeout)
        if job is None:
            return _timed_out(args.timeout)
        print(status.status_text(job), end="")
        return int(status.exit_code(job))

    return cluster.run(redeploy)


def _run(state: Mapping[str, Any]) -> str:
    return f"run {state['run']} " if state.get("run") else ""


def _timed_out(timeout: float) -> int:
    print(f"error: the run did not end within {timeout:.0f}s", file=sys.stderr)
    return int(Exit.UNREACHABLE)


def _namespace(args: argparse.Namespace) -> str:
    return getattr(args, "namespace", None) or cluster.default_namespace()


def _emit(output: str, data: Any, text: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    else:
        print(text, end="")
