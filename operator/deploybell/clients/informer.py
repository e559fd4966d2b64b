"""An informer: list, then watch with bookmarks, relisting after `410 Gone`; a store in memory.

One informer covers one kind in one namespace (or all) with a server-side label selector. It
keeps a trimmed copy of every object and calls `on_change` with each one that moved, so the run
that owns it can look again. It ends when its task is cancelled (`stop`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from deploybell.clients.errors import ApiError, Gone, Unreachable
from deploybell.clients.kube import KubeClient

logger = logging.getLogger("deploybell.informer")

Trim = Callable[[Mapping[str, Any]], dict[str, Any]]
OnChange = Callable[[Mapping[str, Any], bool], None]
"""Called with each object that changed, and whether it is gone."""
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)


class Informer:
    """List+watch one kind; `synced` is set once the first list is in the store."""

    def __init__(
        self,
        kube: KubeClient,
        path: str,
        *,
        label_selector: str = "",
        type_meta: Mapping[str, str] | None = None,
        trim: Trim = dict,
        on_change: OnChange | None = None,
        server_timeout: int = 300,
    ) -> None:
        self.kube = kube
        self.path = path
        self.label_selector = label_selector
        self.type_meta = dict(type_meta or {})  # list items come without apiVersion and kind
        self.trim = trim
        self.on_change = on_change
        self.server_timeout = server_timeout
        self.store: dict[tuple[str, str], dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.settled = asyncio.Event()
        """Set once the first list was tried, whether or not it worked."""
        self.problem: ApiError | None = None
        """Why the store may be stale: the last list or watch failed (None once a list works)."""
        self.relists = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer {self.path}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def objects(self) -> list[dict[str, Any]]:
        return list(self.store.values())

    async def _run(self) -> None:
        failures = 0
        version = ""
        while True:
            try:
                if not version:
                    version = await self._list()
                    self.relists += 1
                version = await self._watch(version)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Gone:
                version = ""  # too old: list again (the store is replaced, changes announced)
            except (ApiError, OSError, TimeoutError) as e:
                self.problem = e if isinstance(e, ApiError) else Unreachable("Unreachable", str(e))
                self.settled.set()
                delay = BACKOFF[min(failures, len(BACKOFF) - 1)]
                failures += 1
                logger.warning("watch of %s failed (%s); again in %.1fs", self.path, e, delay)
                await asyncio.sleep(delay)
                version = ""  # list again: what was missed meanwhile, and proof the server is back
            except Exception:  # never let a watch die silently: log, back off, start over
                logger.exception("watch of %s failed unexpectedly", self.path)
                version = ""
                await asyncio.sleep(BACKOFF[-1])

    def _query(self) -> dict[str, str]:
        return {"labelSelector": self.label_selector} if self.label_selector else {}

    async def _list(self) -> str:
        data = await self.kube.request("GET", self.path, query=self._query())
        fresh = {}
        for item in data.get("items") or []:
            item = {**self.type_meta, **item}
            meta = item.get("metadata") or {}
            fresh[(str(meta.get("namespace") or ""), str(meta.get("name")))] = self.trim(item)
        gone = [obj for key, obj in self.store.items() if key not in fresh]
        changed = [obj for key, obj in fresh.items() if self.store.get(key) != obj]
        self.store = fresh
        self.problem = None
        for obj in gone:
            self._announce(obj, True)
        for obj in changed:
            self._announce(obj, False)
        self.synced.set()
        self.settled.set()
        return str((data.get("metadata") or {}).get("resourceVersion") or "")

    async def _watch(self, version: str) -> str:
        query = {
            **self._query(),
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.server_timeout),
        }
        async for event in self.kube.watch(self.path, query, self.server_timeout + 30):
            kind, obj = event.get("type"), event.get("object") or {}
            meta = obj.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            if kind == "BOOKMARK":
                continue
            key = (str(meta.get("namespace") or ""), str(meta.get("name")))
            if kind == "DELETED":
                known = self.store.pop(key, None)
                self._announce(known if known is not None else self.trim(obj), True)
            else:
                trimmed = self.trim(obj)
                self.store[key] = trimmed
                self._announce(trimmed, False)
        return version

    def _announce(self, obj: Mapping[str, Any], gone: bool) -> None:
        if self.on_change is not None:
            self.on_change(obj, gone)
