"""IRCv3 SASL PLAIN for the IRC session: CAP LS 302 before NICK/USER (the server then holds the
registration until CAP END), CAP REQ sasl, AUTHENTICATE PLAIN, the credentials, 903 or 904.

Built on the `irc` library's primitives (`cap`, `send_items`, its event names); its own SASL
handshake exists only in the blocking client.
"""

from __future__ import annotations

import base64
from typing import Any

from irc.client import Event

from deploybell.notify.providers.base import (
    DeliveryError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)

# 908 (the mechanisms a server has) and 907 (already logged in) need no answer.
EVENTS = frozenset({"cap", "authenticate", "saslsuccess", "saslfail", "sasltoolong", "saslaborted"})
_CHUNK = 400  # AUTHENTICATE carries at most 400 bytes of base64 per line


class SaslPlain:
    """One connection's SASL exchange: `start()` on connect, then `feed()` each SASL event."""

    def __init__(self, connection: Any, account: str, password: str, where: str) -> None:
        self.connection = connection
        self.account = account
        self.password = password
        self.where = where
        self.done = False
        self._offered: list[str] = []

    def start(self) -> None:
        self.connection.cap("LS", "302")

    def feed(self, event: Event) -> None:
        """Answer one event; raises when the server cannot or will not log us in."""
        args = [str(a) for a in event.arguments]
        if event.type == "cap" and args[:1] == ["LS"]:
            self._offered += args[-1].split()
            if args[1:2] != ["*"]:  # the last line of a multi-line LS
                self._request()
        elif event.type == "cap" and args[:1] == ["ACK"] and "sasl" in " ".join(args[1:]).split():
            self.connection.send_items("AUTHENTICATE", "PLAIN")
        elif event.type == "cap" and args[:1] == ["NAK"]:
            raise self.unavailable(f"it refused CAP REQ sasl ({' '.join(args[1:])})")
        elif event.type == "authenticate" and str(event.target) == "+":
            self._send_credentials()
        elif event.type == "saslsuccess":
            self.done = True
            self.connection.cap("END")
        elif event.type in ("saslfail", "sasltoolong", "saslaborted"):
            reason = args[-1] if args else event.type
            raise PermanentDeliveryError(
                f"irc: {self.where} refused SASL PLAIN for account {self.account!r} "
                f"(check Secret key 'saslPassword'): {reason}"
            )

    def unavailable(self, why: str) -> DeliveryError:
        """The server offers no SASL PLAIN (now: services may be down): try again later."""
        return TemporaryDeliveryError(
            f"irc: {self.where} cannot log in with Secret key 'saslPassword': {why}"
        )

    def _request(self) -> None:
        for cap in self._offered:
            name, _, mechanisms = cap.partition("=")
            if name == "sasl" and (not mechanisms or "PLAIN" in mechanisms.split(",")):
                self.connection.cap("REQ", "sasl")
                return
        self.connection.cap("END")
        raise self.unavailable(f"it offers no SASL PLAIN (CAP LS: {' '.join(self._offered)})")

    def _send_credentials(self) -> None:
        # authzid empty, authcid = the account, then the password (RFC 4616).
        raw = f"\0{self.account}\0{self.password}".encode()
        payload = base64.b64encode(raw).decode()
        chunks = [payload[i : i + _CHUNK] for i in range(0, len(payload), _CHUNK)]
        if len(chunks[-1]) == _CHUNK:
            chunks.append("+")  # a full last line would leave the server waiting for more
        for chunk in chunks:
            self.connection.send_items("AUTHENTICATE", chunk)
