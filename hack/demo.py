"""`make demo`: deploybell's whole job on the local cluster, with a readable timeline.

Starts (or reuses) the local cluster, real local sinks for every provider (a Slack-API-compatible
server, a HipChat server, ngircd with a listener, an SMTP server, a webhook receiver, a Teams
Workflows webhook, a Discord webhook API, a Google Chat space webhook, a GitHub API that records
deployments, a Grafana API that records annotations), the operator, and applies examples/demo/:
one DeployJob that succeeds, one that fails (a kwok failure annotation; the diagnosis shows in the
messages), one that is canceled while rolling out, and one that deploys into a second local cluster
(`edge-eu`, spec.cluster) while its status and messages stay in the first. It prints each message
as a sink receives it, then `kubectl get dj,dbn`, the second cluster's Deployments and a summary.
Exit code 0 only when every expected notification was delivered. Ctrl-C stops everything it
started.
"""

from __future__ import annotations

import html
import json
import re
import signal
import string
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "hack" / "cluster"), str(ROOT)]
import localcluster  # noqa: E402
from tests.support.cluster import ClusterAccess, embedded_kubeconfig  # noqa: E402
from tests.support.peers.discord import DiscordPeer, readable  # noqa: E402
from tests.support.peers.github import GithubPeer  # noqa: E402
from tests.support.peers.googlechat import GooglechatPeer  # noqa: E402
from tests.support.peers.grafana import GrafanaPeer  # noqa: E402
from tests.support.peers.hipchat import HipchatPeer  # noqa: E402
from tests.support.peers.irc import IrcListener, NgircdServer  # noqa: E402
from tests.support.peers.slack import SlackPeer  # noqa: E402
from tests.support.peers.smtp import SmtpPeer  # noqa: E402
from tests.support.peers.teams import TeamsPeer  # noqa: E402
from tests.support.peers.webhook import WebhookPeer  # noqa: E402
from tests.support.programs import MissingProgram  # noqa: E402

NAMESPACE = "deploybell-demo"
# The commits examples/demo/20-deployjobs.yaml deploys (spec.source), known to the GitHub sink.
COMMITS = {
    "5e1f0c2d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e",
    "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b",
}
DEADLINE_SECONDS = 150
EDGE_STATE = Path(f"{localcluster.STATE}-b")  # the second cluster, a deploy target
JOBS = 4


def say(message: str) -> None:
    print(f"==> [{time.strftime('%H:%M:%S')}] {message}", flush=True)


# Each sink's name (its Notification is team-<name>) and how the start line calls it.
SINKS = {
    "slack": "Slack API",
    "hipchat": "HipChat",
    "irc": "ngircd + listener",
    "email": "SMTP",
    "webhook": "webhook",
    "teams": "Teams",
    "discord": "Discord",
    "googlechat": "Google Chat",
    "github": "GitHub API",
    "grafana": "Grafana API",
}


def sinks_line() -> str:
    return "starting local sinks: " + ", ".join(SINKS.values())


class Sinks:
    """The local stand-ins for Slack, HipChat, IRC, SMTP, a webhook, Teams, Discord and Google
    Chat, and what they heard. Only IRC runs an installed server (ngircd); when it is missing,
    that sink is left out with one line saying so and the others run."""

    def __init__(self, stack: ExitStack) -> None:
        self.skipped: dict[str, str] = {}  # sink → why it is left out
        self.slack = stack.enter_context(SlackPeer())
        self.hipchat = stack.enter_context(HipchatPeer(token="hipchat-test-token"))  # noqa: S106
        self.webhook = stack.enter_context(WebhookPeer(hmac_key="demo-hmac-key"))
        self.smtp = stack.enter_context(SmtpPeer())
        self.ircd, self.irc = self._irc(stack)
        self.teams = stack.enter_context(TeamsPeer())
        self.discord = stack.enter_context(DiscordPeer())
        self.googlechat = stack.enter_context(GooglechatPeer())
        self.github = stack.enter_context(GithubPeer(repositories={"acme/shop": COMMITS}))
        self.grafana = stack.enter_context(GrafanaPeer())
        self.printed: set[tuple[str, int]] = set()

    def _irc(self, stack: ExitStack) -> tuple[NgircdServer | None, IrcListener | None]:
        try:
            ircd = stack.enter_context(NgircdServer())
        except MissingProgram as e:
            self.skipped["irc"] = str(e)
            others = len(SINKS) - 1
            say(
                f"IRC sink left out: {e}; the {others} other sinks are Python servers that need "
                "nothing installed, so the demo runs on without the team-irc Notification"
            )
            return None, None
        listener = IrcListener(ircd.host, ircd.port, ["#deploys"], nick="watcher")
        return ircd, stack.enter_context(listener)

    def placeholders(self) -> dict[str, str]:
        return {
            "SLACK_API_URL": self.slack.base_url,
            "HIPCHAT_URL": self.hipchat.url,
            "WEBHOOK_URL": self.webhook.url,
            # A left-out sink's Notification is not applied; the placeholder still needs a value.
            "IRC_SERVER": f"{self.ircd.host}:{self.ircd.port}" if self.ircd else "127.0.0.1:1",
            "TEAMS_URL": self.teams.url,
            "DISCORD_URL": self.discord.url,
            "GOOGLECHAT_URL": self.googlechat.url,
            "GITHUB_API_URL": self.github.api_url,
            "GRAFANA_URL": self.grafana.url,
        }

    def heard(self) -> list[tuple[str, str, str]]:
        """(provider, recipient, text) of everything received so far, per sink in order."""
        out: list[tuple[str, str, str]] = []
        for call in self.slack.calls:
            if call.method in ("chat.postMessage", "chat.update") and not call.error:
                verb = "updated" if call.method == "chat.update" else "posted"
                thread = " (thread)" if call.body.get("thread_ts") else ""
                out.append(
                    (
                        "slack",
                        f"{call.body.get('channel')}{thread}",
                        f"{verb}: {call.body.get('text', '')}",
                    )
                )
        for request in self.hipchat.received:
            out.append(("hipchat", f"#{request.target}", _plain(request.message)))
        for heard in self.irc.messages() if self.irc else []:
            out.append(("irc", heard.target, _plain(heard.text)))
        for mail in self.smtp.received:
            out.append(("email", ",".join(mail.rcpt_tos), str(mail.message["Subject"])))
        for request in self.webhook.received:
            data = request.json if isinstance(request.json, dict) else {}
            out.append(("webhook", data.get("type", ""), data.get("data", {}).get("title", "")))
        for run in self.teams.received:
            out += [("teams", "channel (workflow)", _first_text(card)) for card in run.posted]
        for request in self.discord.received:
            if request.status == 200:
                verb = "edited" if request.method == "PATCH" else "posted"
                title = readable(request.answer["embeds"][0].get("title", ""))
                out.append(
                    ("discord", f"channel {request.answer['channel_id']}", f"{verb}: {title}")
                )
        for message in self.googlechat.messages():
            thread = message["thread"]["name"].rsplit("/", 1)[-1]
            out.append(("googlechat", f"thread {thread}", message["text"]))
        out += self.records()
        return out

    def records(self) -> list[tuple[str, str, str]]:
        """GitHub deployment and commit statuses, Grafana annotations added and patched."""
        out: list[tuple[str, str, str]] = []
        for call in self.github.received:
            if call.method == "POST" and call.status == 201 and "state" in call.json:
                where = call.path.split("/repos/")[1].rsplit("/", 1)[0]
                out.append(("github", where, f"{call.json['state']}: {call.json['description']}"))
        for call in self.grafana.received:
            if call.method in ("POST", "PATCH") and call.status == 200:
                seconds = (call.json["timeEnd"] - call.json["time"]) / 1000
                shape = f"region of {seconds:.0f}s" if seconds else "point"
                first = call.json["text"].splitlines()[0]
                tags = ",".join(call.json["tags"][2:])
                out.append(("grafana", f"{call.method} {shape} [{tags}]", first))
        return out

    def print_new(self) -> None:
        counts: dict[str, int] = {}
        for provider, recipient, text in self.heard():
            counts[provider] = counts.get(provider, 0) + 1
            key = (provider, counts[provider])
            if key not in self.printed:
                self.printed.add(key)
                line = f"  {time.strftime('%H:%M:%S')}  {provider:<10} {recipient:<32} {text}"
                print(line[:200], flush=True)


def _first_text(card: Any) -> str:
    """The first text of an Adaptive Card (its title), depth first."""
    if isinstance(card, dict):
        if card.get("type") in ("TextRun", "TextBlock") and isinstance(card.get("text"), str):
            return str(card["text"])
        values = list(card.values())
    else:
        values = list(card) if isinstance(card, list) else []
    return next((found for v in values if (found := _first_text(v))), "")


def _plain(text: str) -> str:
    """IRC colour codes, HTML tags and line breaks out, for a one-line terminal view."""
    text = re.sub(r"\x03\d{1,2}(,\d{1,2})?", "", text)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def examples(values: dict[str, str], left_out: set[str]) -> list[str]:
    """examples/demo/*.yaml filled in, without the Notifications of left-out sinks nor the
    DeployJobs' hooks naming them."""
    texts = [
        string.Template(path.read_text()).substitute(values)
        for path in sorted((ROOT / "examples" / "demo").glob("*.yaml"))
    ]
    if not left_out:
        return texts
    gone = {f"team-{sink}" for sink in left_out}
    kept = []
    for text in texts:
        docs = [d for d in yaml.safe_load_all(text) if d]
        docs = [d for d in docs if d["kind"] != "Notification" or d["metadata"]["name"] not in gone]
        for doc in docs:
            if doc["kind"] == "DeployJob":
                for hook in ("onStart", "onSuccess", "onFailure", "onCancel", "always"):
                    if hook in doc["spec"]:
                        entries = doc["spec"][hook]
                        doc["spec"][hook] = [e for e in entries if e.get("notify") not in gone]
        kept.append(yaml.safe_dump_all(docs, sort_keys=False))
    return kept


class Demo:
    def __init__(self) -> None:
        self.operator: subprocess.Popen[bytes] | None = None
        self.kubeconfig = Path()
        self.bins = Path()
        self.edge: ClusterAccess | None = None
        self.log = ROOT / ".local" / "demo-operator.log"

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [str(self.bins / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def cluster(self) -> None:
        say("building/locating the local cluster binaries (cached after the first run)")
        self.bins = localcluster.bin_dir()
        say("starting the local cluster")
        self.kubeconfig = localcluster.up().kubeconfig
        say(f"starting a second local cluster, edge-eu, a deploy target ({EDGE_STATE})")
        edge = localcluster.up(EDGE_STATE)
        self.edge = ClusterAccess(edge.kubeconfig, self.bins, owned=False, local=edge)
        if not self.edge.kubectl("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name"):
            self.edge.kubectl("create", "namespace", NAMESPACE)
        say("installing the CRDs")
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        self.kubectl(
            "wait",
            "--for=condition=Established",
            "crd/deployjobs.deploybell.io",
            "crd/notifications.deploybell.io",
            "--timeout=60s",
        )

    def clean_previous(self) -> None:
        """A previous run's namespace goes first; the operator must run to release its jobs."""
        if self.kubectl("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name"):
            say(f"removing the previous demo namespace {NAMESPACE}")
            self.kubectl("delete", "namespace", NAMESPACE, "--timeout=110s")

    def start_operator(self, sinks: Sinks) -> None:
        say(f"starting the operator (log: {self.log.relative_to(ROOT)})")
        self.log.parent.mkdir(exist_ok=True)
        self.operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deploybell",
                "run",
                "--cluster-name",
                "local-demo",
                "--smtp-host",
                sinks.smtp.host,
                "--smtp-port",
                str(sinks.smtp.port),
                "--smtp-from",
                "deploybell@demo.test",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={"KUBECONFIG": str(self.kubeconfig), "PATH": "/usr/bin:/bin"},
        )

    def apply_examples(self, values: dict[str, str], left_out: set[str]) -> None:
        assert self.edge is not None
        values = {**values, "EDGE_KUBECONFIG": embedded_kubeconfig(self.edge, "edge-eu")}
        notifications = len(SINKS) - len(left_out)
        say(f"applying examples/demo/ ({JOBS} DeployJobs, {notifications} Notifications)")
        for text in examples(values, left_out):
            self.kubectl("apply", "-f", "-", stdin=text)

    def jobs(self) -> list[dict[str, Any]]:
        return list(json.loads(self.kubectl("get", "dj", "-n", NAMESPACE, "-o", "json"))["items"])

    def settled(self, jobs: list[dict[str, Any]]) -> bool:
        """Every job finished and each of its messages delivered."""
        finished = [
            j
            for j in jobs
            if (j.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Canceled")
        ]
        if len(finished) != JOBS:
            return False
        entries = [e for j in jobs for e in j["status"].get("notifications") or []]
        return bool(entries) and all(e.get("state") == "Sent" for e in entries)

    def watch(self, sinks: Sinks) -> bool:
        say("timeline: what each sink received (time, provider, recipient, text)")
        canceled = False
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            sinks.print_new()
            jobs = self.jobs()
            batch = next((j for j in jobs if j["metadata"]["name"] == "batch"), {})
            if not canceled and (batch.get("status") or {}).get("phase") == "Deploying":
                self.kubectl("annotate", "dj/batch", "-n", NAMESPACE, "deploybell.io/cancel=demo")
                canceled = True
            if self.settled(jobs):
                time.sleep(0.5)  # let the last receipts print; the check above already passed
                sinks.print_new()
                return True
            time.sleep(0.3)
        return False

    def stop_operator(self) -> None:
        if self.operator and self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            try:
                self.operator.wait(30)
            except subprocess.TimeoutExpired:
                self.operator.kill()

    def run(self) -> int:
        began = time.monotonic()
        self.cluster()
        with ExitStack() as stack:
            say(sinks_line())
            sinks = Sinks(stack)
            stack.callback(self.stop_operator)
            self.start_operator(sinks)
            self.clean_previous()
            self.apply_examples(sinks.placeholders(), set(sinks.skipped))
            ok = self.watch(sinks)
            print(self.kubectl("get", "dj,dbn", "-n", NAMESPACE), flush=True)
            assert self.edge is not None
            say(f"cluster edge-eu, namespace {NAMESPACE}: what web-edge deployed there")
            print(self.edge.kubectl("get", "deployments", "-n", NAMESPACE), flush=True)
            jobs = self.jobs()
            left_out = dict(sinks.skipped)
        entries = [e for j in jobs for e in (j.get("status") or {}).get("notifications") or []]
        sent = sum(int(e.get("sent") or 0) for e in entries)  # a ledger row counts its recipients
        took = time.monotonic() - began
        if not ok:
            missing = [
                f"{j['metadata']['name']}:{e['id']}:{e.get('state')}:{e.get('lastError', '')}"
                for j in jobs
                for e in (j.get("status") or {}).get("notifications") or []
                if e.get("state") != "Sent"
            ]
            say(f"FAILED after {took:.0f}s: not every notification was delivered: {missing}")
            return 1
        without = "".join(f"; left out: {sink} ({why})" for sink, why in left_out.items())
        say(
            f"OK: {sent} notifications delivered for {JOBS} DeployJobs (2 succeeded, one of them "
            f"in cluster edge-eu, 1 failed, 1 canceled) in {took:.0f}s; both clusters keep "
            f"running (make cluster-down; DEPLOYBELL_CLUSTER_DIR={EDGE_STATE} make cluster-down)"
            f"{without}"
        )
        return 0


def main() -> int:
    demo = Demo()
    try:
        return demo.run()
    except KeyboardInterrupt:
        demo.stop_operator()
        say("interrupted: stopped the operator and the sinks; stopping both local clusters")
        localcluster.down()
        localcluster.down(state=EDGE_STATE)
        return 130


if __name__ == "__main__":
    sys.exit(main())
