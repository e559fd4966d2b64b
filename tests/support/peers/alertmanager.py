"""A real Prometheus Alertmanager, built from its Go module (`hack/cluster/build.sh
alertmanager`), on a free loopback port with a minimal configuration: one route to a receiver
that notifies nobody (the test reads the alerts from Alertmanager's own API, as `amtool` does).

    with AlertmanagerServer() as am:
        ...send to am.url...
        am.alerts()  # GET /api/v2/alerts: the active ones

What Alertmanager enforces is its own: the v2 API's schema and its alert validation (at least one
label, valid label names, `startsAt` not after `endsAt`), answering 400 with its reason.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self

from tests.support.peers import _servers
from tests.support.peers.contract import texts
from tests.support.peers.irc import free_port

CONFIG = """\
route:
  receiver: nobody
  group_wait: 1s
receivers:
  - name: nobody
"""
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def binary() -> Path:
    return _servers.tool("alertmanager", "ALERTMANAGER_VERSION")


class AlertmanagerServer:
    """`alertmanager` with its config and storage in a temporary directory, no clustering."""

    def __init__(self, web_config: str = "") -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="deploybell-alertmanager-"))
        self.web_config = web_config
        self.server: _servers.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        (self.directory / "alertmanager.yml").write_text(CONFIG)
        argv = [
            str(binary()),
            "--config.file=alertmanager.yml",
            f"--storage.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        if self.web_config:
            (self.directory / "web.yml").write_text(self.web_config)
            argv.append("--web.config.file=web.yml")
        self.server = _servers.Process(argv, self.directory)
        # /-/ready answers 401 under basic auth: then any HTTP answer means it is up.
        self.server.start(lambda: _answers(f"{self.url}/-/ready"))
        print(f"alertmanager ready in {self.server.start_seconds:.2f}s")
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alerts(self, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The active alerts (`GET /api/v2/alerts`; resolved ones are not listed)."""
        url = f"{self.url}/api/v2/alerts"
        request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            found: list[dict[str, Any]] = json.load(answer)
        return found


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def alert_problems(body: Any) -> list[str]:
    """Alertmanager's checks of a posted alert list (api/v2 schema and `Alert.Validate`)."""
    if not isinstance(body, list):
        return ["the body must be a list of alerts"]
    out = []
    for alert in body:
        labels = alert.get("labels") or {}
        if not labels:
            out.append("at least one label pair required")
        out += [f"invalid label name {n!r}" for n in labels if not _LABEL.fullmatch(n)]
        out += [f"label {n} is not text" for n, v in labels.items() if not isinstance(v, str)]
        if alert.get("startsAt", "") > alert.get("endsAt", "~"):
            out.append("start time must be before end time")
    return out


class AlertmanagerContract:
    """The provider contract over a real Alertmanager: its active alerts, as its UI lists them."""

    alerting = True
    rate_limits = False  # Alertmanager has no rate limit
    limits_size = False  # nor documented sizes

    def __init__(self) -> None:
        self.server = AlertmanagerServer()

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def secret(self) -> dict[str, str]:
        return {"url": self.server.url}

    def recipients(self) -> tuple[str, ...]:
        return ()

    def options(self) -> dict[str, Any]:
        return {"severity": "critical"}

    def visible(self) -> list[str]:
        return [texts(a.get("annotations") or {}) for a in self.server.alerts()]

    def rate_limit_next(self, seconds: int) -> None:
        raise NotImplementedError("Alertmanager has no rate-limit answer")

    def problems(self, rendered: Any) -> list[str]:
        return [] if rendered is None else alert_problems(rendered)
