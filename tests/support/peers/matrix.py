"""A real Matrix homeserver: Synapse (1.98.0, the last Apache-2.0 release) from its own
virtualenv (`make synapse`), on 127.0.0.1 with SQLite in a temporary directory.

Synapse is configured as it ships (its default `rc_message` of 0.2 messages a second with a burst
of 10, the 65536-byte event limit, transaction-id idempotency per access token) with only what a
test needs added: a client listener on a free port, no federation, no key servers, no metrics and
a registration shared secret, through which the peer registers its users (Synapse's admin API).
The bot `@deploybell:localtest` creates the public room `#deploys:localtest`; the reader
`@reader:localtest` joins it and reads it, edits applied, as a person's client shows it. Synapse's
own rate limit caught the provider tests' bursts (createRoom answered 429 `M_LIMIT_EXCEEDED`), so
the bot has an admin override there (see `MatrixPeer`); the end-to-end test keeps the default.

`rate_limit_next(seconds)` restarts Synapse with `rc_message` of one message per `seconds` and a
burst of 1 and spends that burst as the bot, so the provider's next message gets Synapse's own
429 `M_LIMIT_EXCEEDED` with its `retry_after_ms`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

SERVER_NAME = "localtest"
BOT = f"@deploybell:{SERVER_NAME}"
SECRET = "deploybell-test-registration-secret"
EVENT_BYTES = 65536
START_SECONDS = 90.0
_VERSIONS = "/_matrix/client/versions"
DEFAULT_VENV = Path.home() / ".cache" / "deploybell" / "synapse-1.98.0"


def synapse_python() -> Path:
    """The interpreter of Synapse's virtualenv; a clear error when `make synapse` was not run."""
    python = Path(os.environ.get("DEPLOYBELL_SYNAPSE_VENV", DEFAULT_VENV)) / "bin" / "python"
    if not python.exists():
        raise RuntimeError(
            f"Synapse is not installed at {python.parent.parent}: run `make synapse`"
        )
    return python


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SynapseServer:
    """Synapse in the foreground, its data in a temporary directory kept across restarts."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="synapse-peer-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in = 0.0  # seconds from spawn to answering, for the report

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, rc_message: tuple[float, int] | None = None) -> None:
        config = self.dir / "homeserver.yaml"
        config.write_text(json.dumps(self._config(rc_message)))  # JSON is YAML
        key = self.dir / "signing.key"
        if not key.exists():
            seed = base64.b64encode(os.urandom(32)).decode().rstrip("=")
            key.write_text(f"ed25519 a_test {seed}\n")
        began = time.monotonic()
        log = (self.dir / "synapse.log").open("ab")
        self.process = subprocess.Popen(
            [str(synapse_python()), "-m", "synapse.app.homeserver", "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        deadline = began + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + _VERSIONS, timeout=2):  # noqa: S310 (http://127.0.0.1)
                    self.started_in = time.monotonic() - began
                    return
            except OSError:
                time.sleep(0.1)
        tail = (self.dir / "synapse.log").read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"Synapse did not answer within {START_SECONDS:.0f}s:\n{tail}")

    def _config(self, rc_message: tuple[float, int] | None) -> dict[str, Any]:
        config: dict[str, Any] = {
            "server_name": SERVER_NAME,
            "pid_file": str(self.dir / "synapse.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "type": "http",
                    "tls": False,
                    "bind_addresses": ["127.0.0.1"],
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(self.dir / "homeserver.db")}},
            "media_store_path": str(self.dir / "media"),
            "signing_key_path": str(self.dir / "signing.key"),
            "registration_shared_secret": SECRET,
            "report_stats": False,
            "macaroon_secret_key": "deploybell-test-macaroon",
            "form_secret": "deploybell-test-form",
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "enable_metrics": False,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
        }
        if rc_message is not None:
            per_second, burst = rc_message
            config["rc_message"] = {"per_second": per_second, "burst_count": burst}
        return config

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MatrixClient:
    """The few Client-Server API calls the peer makes (blocking: the tests call it from threads
    or between awaits)."""

    def __init__(self, url: str, token: str = "") -> None:
        self.url, self.token = url, token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        # Always http://127.0.0.1 (the peer it started).
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: {e.code} {e.read()[:500]!r}") from e

    def register(self, user: str, admin: bool = False) -> str:
        """A new user through the shared-secret admin API; its access token."""
        nonce = self.call("GET", "/_synapse/admin/v1/register")["nonce"]
        password = f"{user}-password"
        signed = "\0".join([nonce, user, password, "admin" if admin else "notadmin"])
        mac = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha1).hexdigest()
        body = {"nonce": nonce, "username": user, "password": password, "admin": admin, "mac": mac}
        return str(self.call("POST", "/_synapse/admin/v1/register", body)["access_token"])


class MatrixPeer:
    """Synapse with the bot and the reader in `#deploys:localtest`.

    `unlimited_bot`: the bot gets Synapse's per-user rate-limit override (the admin API's
    `override_ratelimit`, as admins give bot accounts), for tests that send a burst of messages
    straight from the provider (a real operator retries the 429s instead; the end-to-end test
    keeps the default limit). `rate_limit_next` removes the override first."""

    rate_limits = True
    limits_size = True

    def __init__(self, unlimited_bot: bool = True) -> None:
        self.server = SynapseServer()
        self.unlimited_bot = unlimited_bot
        self.bot_token = ""
        self.reader_token = ""
        self.admin_token = ""
        self.room_id = ""
        self.alias = f"#deploys:{SERVER_NAME}"

    def __enter__(self) -> MatrixPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.server.cleanup()

    def start(self) -> MatrixPeer:
        self.server.start()
        anonymous = MatrixClient(self.server.url)
        self.bot_token = anonymous.register("deploybell")
        self.reader_token = anonymous.register("reader")
        self.admin_token = anonymous.register("admin", admin=True)
        if self.unlimited_bot:
            self._override({"messages_per_second": 0, "burst_count": 0})
        room = self.bot().call(
            "POST",
            "/_matrix/client/v3/createRoom",
            {"room_alias_name": "deploys", "preset": "public_chat", "name": "Deploys"},
        )
        self.room_id = str(room["room_id"])
        self.reader().call("POST", f"/_matrix/client/v3/join/{quote(self.alias, safe='')}", {})
        return self

    def bot(self) -> MatrixClient:
        return MatrixClient(self.server.url, self.bot_token)

    def reader(self) -> MatrixClient:
        return MatrixClient(self.server.url, self.reader_token)

    # ---- the provider contract

    def secret(self) -> dict[str, str]:
        return {"token": self.bot_token, "url": self.server.url}

    def recipients(self) -> tuple[str, ...]:
        return (self.alias,)

    def options(self) -> dict[str, Any]:
        return {}

    def events(self) -> list[dict[str, Any]]:
        """Every m.room.message of the room, oldest first, as the reader's client gets them."""
        path = f"/_matrix/client/v3/rooms/{quote(self.room_id, safe='')}/messages?dir=b&limit=500"
        chunk = self.reader().call("GET", path)["chunk"]
        found = [e for e in chunk if e.get("type") == "m.room.message"]
        return sorted(found, key=lambda e: (e["origin_server_ts"], e["event_id"]))

    def shown(self) -> list[dict[str, Any]]:
        """The messages a person sees: edits applied to their originals (by the same sender),
        thread replies as messages of their own."""
        events = self.events()
        shown = {e["event_id"]: dict(e["content"]) for e in events if not _replaces(e)}
        senders = {e["event_id"]: e["sender"] for e in events}
        for edit in (e for e in events if _replaces(e)):
            target = edit["content"]["m.relates_to"]["event_id"]
            if target in shown and senders[target] == edit["sender"]:
                shown[target] = {**edit["content"]["m.new_content"], "edited": True}
        return [{"event_id": e, "sender": senders[e], **content} for e, content in shown.items()]

    def visible(self) -> list[str]:
        return [str(m.get("body", "")) for m in self.shown()]

    def _override(self, limits: dict[str, int] | None) -> None:
        """Set (or, with None, remove) the bot's per-user rate-limit override."""
        path = f"/_synapse/admin/v1/users/{quote(BOT, safe='')}/override_ratelimit"
        admin = MatrixClient(self.server.url, self.admin_token)
        admin.call("DELETE" if limits is None else "POST", path, limits)

    def rate_limit_next(self, seconds: int) -> None:
        self._override(None)
        self.server.stop()
        self.server.start(rc_message=(1 / seconds, 1))
        path = f"/_matrix/client/v3/rooms/{quote(self.room_id, safe='')}/send/m.room.message/burst"
        self.bot().call("PUT", path, {"msgtype": "m.notice", "body": "spending the burst"})

    def problems(self, rendered: Any) -> list[str]:
        """What Synapse refuses: an event over 65536 bytes. An edit carries the content twice
        (the `* ` fallback and `m.new_content`); 2000 bytes are kept for the event's envelope
        (ids, hashes, signatures)."""
        out = [f"{k} is missing" for k in ("msgtype", "body") if not rendered.get(k)]
        edit = {
            **rendered,
            "body": "* " + str(rendered.get("body")),
            "formatted_body": "* " + str(rendered.get("formatted_body")),
            "m.new_content": rendered,
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$" + "x" * 43},
        }
        size = len(json.dumps(edit, ensure_ascii=False).encode())
        if size > EVENT_BYTES - 2000:
            out.append(f"an edit of this content is {size} bytes (events hold {EVENT_BYTES})")
        return out


def _replaces(event: dict[str, Any]) -> bool:
    relation = event.get("content", {}).get("m.relates_to") or {}
    return relation.get("rel_type") == "m.replace"
