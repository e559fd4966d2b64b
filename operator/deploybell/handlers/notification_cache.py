"""Notifications from kopf's index, and the Secrets they name, kept from the Secret watch."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from deploybell.clients.kube import KubeClient

JobKey = tuple[str, str]


class NotificationCache:
    """Notifications from kopf's index; Secrets kept from the Secret watch, read on a miss.

    A referenced Secret's every change and deletion reaches `remember_secret` through the
    Secret watch, so a delivery reads memory instead of the API. The first read of a Secret no
    event has brought yet (e.g. just after start-up) goes to the API and is kept from then on.
    """

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.index: Mapping[JobKey, Iterable[Mapping[str, Any]]] = {}
        self._secrets: dict[JobKey, Mapping[str, str]] = {}

    def spec(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        for spec in self.index.get((namespace, name), ()):
            return spec
        return None

    def keeps_secret(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self._secrets

    def remember_secret(self, namespace: str, name: str, body: Mapping[str, Any] | None) -> None:
        """The Secret as the watch saw it; None when it was deleted."""
        if body is None:
            self._secrets.pop((namespace, name), None)
        else:
            self._secrets[(namespace, name)] = secret_data(body)

    async def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        key = (namespace, name)
        if key in self._secrets:
            return self._secrets[key]
        body = await self.kube.get("v1", "Secret", namespace, name)
        if body is None:
            return None
        self._secrets[key] = secret_data(body)
        return self._secrets[key]


def secret_data(body: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's keys and decoded values (stringData wins, as the API server would merge it)."""
    data = {
        k: base64.b64decode(v).decode(errors="replace") for k, v in (body.get("data") or {}).items()
    }
    return {**data, **(body.get("stringData") or {})}
