"""What the provider contract test (tests/providers/test_contract.py) needs from a type's peer.

A type's contract wraps its peer in `PeerContract` (which starts and stops it) and adds what is
the type's own; the five older peers are wrapped here, newer ones beside their peer. The
registry of contracts is `tests.support.peers.CONTRACTS`, one line per provider type.

A contract may also have `commit_of(run) -> str`: the destination keeps one record per DeployJob
and commit (a commit status), so the contract test deploys each run on that commit of the peer's
repository, and every run stays visible (tests/support/peers/_statuses.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from email.message import EmailMessage
from typing import Any, Generic, Protocol, Self, TypeVar

from tests.support.peers import irc, smtp
from tests.support.peers.hipchat import MAX_MESSAGE, HipchatPeer
from tests.support.peers.slack import SlackPeer
from tests.support.peers.webhook import WebhookPeer


class Contract(Protocol):
    """A running peer, seen as a user of the destination sees it."""

    rate_limits: bool
    """The destination answers with a rate limit the provider must honour (HTTP 429s)."""
    limits_size: bool
    """The destination refuses messages over a size (chat APIs); mail and webhooks take all."""

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...

    def secret(self) -> dict[str, str]:
        """The Secret's data that points the provider at this peer."""
        ...

    def recipients(self) -> tuple[str, ...]:
        """The recipients a Notification uses here (empty for types that take none)."""
        ...

    def options(self) -> dict[str, Any]:
        """The Notification's options block for this type."""
        ...

    def visible(self) -> list[str]:
        """The current text of every message the destination shows, oldest first, after edits:
        what a person reading the channel, inbox or incident sees."""
        ...

    def rate_limit_next(self, seconds: int) -> None:
        """Answer the next request with the vendor's rate-limit answer, asking to wait
        `seconds` (in the header and/or the body, as the vendor does)."""
        ...

    def problems(self, rendered: Any) -> list[str]:
        """Why the destination would refuse a body the provider rendered (its documented
        required fields and size limits); empty when it would accept it."""
        ...


def texts(value: Any) -> str:
    """Every string inside a JSON value, joined: how a card, embed or block reads as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(texts(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(texts(v) for v in value)
    return ""


class _Startable(Protocol):
    def start(self) -> Any: ...
    def stop(self) -> None: ...


Peer = TypeVar("Peer", bound=_Startable)


class PeerContract(Generic[Peer]):
    """The part of a contract that is the same for every peer: the peer runs while the contract
    is entered; no recipients and no options unless the type overrides them. A type is held to
    rate limits and size limits unless its contract says the destination has none."""

    rate_limits = True
    limits_size = True

    def __init__(self, peer: Peer) -> None:
        self.peer = peer

    def __enter__(self) -> Self:
        self.peer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peer.stop()

    def recipients(self) -> tuple[str, ...]:
        return ()

    def options(self) -> dict[str, Any]:
        return {}


class WebhookContract(PeerContract[WebhookPeer]):
    limits_size = False

    def __init__(self) -> None:
        super().__init__(WebhookPeer(hmac_key="contract-hmac-key", require_signature=True))

    def secret(self) -> dict[str, str]:
        return {"url": self.peer.url, "hmacKey": "contract-hmac-key"}

    def visible(self) -> list[str]:
        return [texts(r.data) for r in self.peer.received if r.status < 300]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.respond_next(1, 429, retry_after=str(seconds))

    def problems(self, rendered: Any) -> list[str]:
        from tests.support.peers.webhook import cloudevent_problems

        return cloudevent_problems("application/cloudevents+json", rendered)


class SlackContract(PeerContract[SlackPeer]):
    def __init__(self) -> None:
        super().__init__(SlackPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.base_url}

    def recipients(self) -> tuple[str, ...]:
        return ("#deploys",)

    def options(self) -> dict[str, Any]:
        return {"threads": True}

    def visible(self) -> list[str]:
        ordered = sorted(self.peer.messages(), key=lambda m: m["ts"])
        return [texts([m["text"], m["blocks"], m["attachments"]]) for m in ordered]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(1, retry_after=seconds)

    def problems(self, rendered: Any) -> list[str]:
        out = []
        blocks = [*rendered.get("blocks", [])]
        for attachment in rendered.get("attachments", []):
            blocks += attachment.get("blocks", [])
        for block in blocks:
            text = (block.get("text") or {}).get("text", "")
            if len(text) > 3000:
                out.append(f"a section's text is {len(text)} characters (at most 3000)")
            for field in block.get("fields", []):
                if len(field.get("text", "")) > 2000:
                    out.append("a field's text is over 2000 characters")
            if len(block.get("fields", [])) > 10:
                out.append("a section has more than 10 fields")
        if len(blocks) > 50:
            out.append(f"{len(blocks)} blocks (at most 50)")
        return out


class HipchatContract(PeerContract[HipchatPeer]):
    def __init__(self) -> None:
        super().__init__(HipchatPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "url": self.peer.url}

    def recipients(self) -> tuple[str, ...]:
        return ("#deploys",)

    def visible(self) -> list[str]:
        return [r.message for r in self.peer.received if r.status < 300]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.respond_next(1, 429, retry_after=str(seconds))

    def problems(self, rendered: Any) -> list[str]:
        size = len(rendered.get("message", ""))
        if size > MAX_MESSAGE:
            return [f"message of {size} characters (at most {MAX_MESSAGE})"]
        return []


class EmailContract(PeerContract[smtp.SmtpPeer]):
    """aiosmtpd; the operator's SMTP setting is replaced by the Secret's host and port."""

    rate_limits = False
    limits_size = False

    def __init__(self) -> None:
        super().__init__(smtp.SmtpPeer())

    def secret(self) -> dict[str, str]:
        return {"host": self.peer.host, "port": str(self.peer.port), "from": "bell@local.test"}

    def recipients(self) -> tuple[str, ...]:
        return ("ops@local.test",)

    def visible(self) -> list[str]:
        return [_mail_text(mail.message) for mail in self.peer.received]

    def rate_limit_next(self, seconds: int) -> None:
        raise NotImplementedError("SMTP has no rate-limit answer")

    def problems(self, rendered: Any) -> list[str]:
        out = []
        for line in rendered.as_bytes().split(b"\n"):
            if len(line.rstrip(b"\r")) > 998:
                out.append(f"a line of {len(line)} bytes (RFC 5322 allows 998)")
        return out


def _mail_text(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    return f"{mail['Subject']} {text}"


class IrcContract:
    """ngircd as Debian ships it, and a listener in the channel."""

    rate_limits = False
    limits_size = True

    def __init__(self) -> None:
        self.server = irc.NgircdServer(penalties=False)
        self.listener: irc.IrcListener | None = None

    def __enter__(self) -> Self:
        self.server.start()
        self.listener = irc.IrcListener(self.server.host, self.server.port, ["#deploys"]).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.server.cleanup()

    def secret(self) -> dict[str, str]:
        return {}

    def recipients(self) -> tuple[str, ...]:
        return (self.server.recipient("#deploys"),)

    def options(self) -> dict[str, Any]:
        return {"linesPerSecond": 20}

    def visible(self) -> list[str]:
        assert self.listener is not None
        return [heard.text for heard in self.listener.messages() if heard.target == "#deploys"]

    def rate_limit_next(self, seconds: int) -> None:
        raise NotImplementedError("IRC has no rate-limit answer")

    def problems(self, rendered: Any) -> list[str]:
        lines: Iterable[str] = rendered
        return [
            f"a line of {len(line.encode())} bytes does not fit 512 with its prefix"
            for line in lines
            if len(f":deploybell!~deploybell@host NOTICE #deploys :{line}\r\n".encode()) > 512
        ]
