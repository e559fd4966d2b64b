"""A real Gitea for the gitea provider's tests: the binary `hack/cluster/build.sh gitea` builds
from Gitea's Go module, run on a free loopback port with a SQLite database in a temporary
directory, an admin user `acme`, access tokens of the scopes a test asks for, and repositories
made with an initial commit."""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[2]
OWNER = "acme"
_APP_INI = """\
APP_NAME = deploybell-test
RUN_MODE = prod
WORK_PATH = {work}
; the tests run as root on CI, which Gitea refuses unless told
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true
[database]
DB_TYPE = sqlite3
PATH = {work}/gitea.db
[server]
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {port}
ROOT_URL = http://127.0.0.1:{port}/
DISABLE_SSH = true
OFFLINE_MODE = true
[repository]
ROOT = {work}/repositories
[security]
INSTALL_LOCK = true
SECRET_KEY = deploybell-test-secret
[log]
MODE = console
LEVEL = warn
[service]
DISABLE_REGISTRATION = true
[indexer]
ISSUE_INDEXER_TYPE = db
[queue]
TYPE = immediate
"""


def binary() -> Path:
    """The Gitea binary, built (once per version, ~6 CPU-minutes cold) when missing."""
    out = subprocess.run(
        [str(ROOT / "hack" / "cluster" / "build.sh"), "gitea"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return Path(out.strip().splitlines()[-1]) / "gitea"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class GiteaServer:
    """One Gitea process and its work directory."""

    def __init__(self, gitea: Path, work: Path) -> None:
        self.gitea = gitea
        self.work = work
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self.admin_token = ""

    def start(self, within: float = 90.0) -> Self:
        assets = self.gitea.resolve().parent / f"{self.gitea.resolve().name}.assets"
        self.work.mkdir(parents=True, exist_ok=True)
        for name in ("options", "templates"):
            (self.work / name).symlink_to(assets / name)
        (self.work / "app.ini").write_text(_APP_INI.format(work=self.work, port=self.port))
        self._cli("migrate")
        self._cli(
            "admin", "user", "create", "--admin", "--username", OWNER, "--email",
            "acme@local.test", "--password", "acme-password-1234", "--must-change-password=false",
        )  # fmt: skip
        self.admin_token = self.token("all")
        log = (self.work / "web.log").open("wb")
        self._process = subprocess.Popen(
            [str(self.gitea), "--config", str(self.work / "app.ini"), "web"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env(),
        )
        self._wait_up(within)
        return self

    def _env(self) -> dict[str, str]:
        return {**os.environ, "GITEA_WORK_DIR": str(self.work), "HOME": str(self.work)}

    def _cli(self, *args: str) -> str:
        proc = subprocess.run(
            [str(self.gitea), "--config", str(self.work / "app.ini"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=self._env(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"gitea {' '.join(args[:3])} failed: {proc.stderr[-2000:]}")
        return proc.stdout

    def _wait_up(self, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                break
            try:
                self.api("GET", "/version")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        log = (self.work / "web.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"gitea did not answer within {within:.0f}s; its log:\n{log}")

    def token(self, scopes: str) -> str:
        """A new access token of `acme` with these scopes (comma-separated, or "all")."""
        name = f"token-{next(self._names)}"
        out = self._cli(
            "admin", "user", "generate-access-token", "--username", OWNER,
            "--token-name", name, "--scopes", scopes, "--raw",
        )  # fmt: skip
        return out.strip().splitlines()[-1]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """One API request with the admin token; its JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310  # always http://127.0.0.1
            f"{self.base_url}/api/v1{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"token {self.admin_token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return json.loads(answer.read() or b"null")

    def repository(self, name: str) -> str:
        """A new repository `acme/<name>` with an initial commit on main; that commit's SHA."""
        self.api("POST", "/user/repos", {"name": name, "auto_init": True, "default_branch": "main"})
        branch = self.api("GET", f"/repos/{OWNER}/{name}/branches/main")
        return str(branch["commit"]["id"])

    def pull_request(self, name: str) -> int:
        """A pull request on `acme/<name>` from a new branch with one change; its index."""
        change = base64.b64encode(b"a change\n").decode()
        self.api(
            "POST",
            f"/repos/{OWNER}/{name}/contents/change.txt",
            {"content": change, "message": "a change", "branch": "main", "new_branch": "change"},
        )
        pull = self.api(
            "POST", f"/repos/{OWNER}/{name}/pulls", {"head": "change", "base": "main", "title": "A"}
        )
        return int(pull["number"])

    def comments(self, name: str, index: int) -> list[dict[str, Any]]:
        """The comments of issue (pull request) `index`, oldest first."""
        listed: list[dict[str, Any]] = self.api(
            "GET", f"/repos/{OWNER}/{name}/issues/{index}/comments"
        )
        return listed

    def edits(self, name: str, index: int, comment: int) -> int:
        """How often a comment was edited, as Gitea's page counts it ("edited"): its content
        history, which keeps the first text beside each edit."""
        url = f"{self.base_url}/{OWNER}/{name}/issues/{index}/content-history/overview"
        with urllib.request.urlopen(f"{url}?comment_id={comment}", timeout=30) as answer:  # noqa: S310
            counts = json.loads(answer.read())["editedHistoryCountMap"]
        return max(int(counts.get(str(comment), 0)) - 1, 0)

    def statuses(self, name: str, sha: str) -> list[dict[str, Any]]:
        """Every status of the commit, oldest first, as Gitea lists them."""
        listed = self.api("GET", f"/repos/{OWNER}/{name}/commits/{sha}/statuses?limit=50")
        return sorted(listed, key=lambda s: s["id"])

    def combined(self, name: str, sha: str) -> dict[str, Any]:
        """What Gitea shows for the commit: its combined state and the latest of each context."""
        shown: dict[str, Any] = self.api("GET", f"/repos/{OWNER}/{name}/commits/{sha}/status")
        return shown

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(30)
        self._process = None
