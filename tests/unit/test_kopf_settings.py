"""kopf as deploybell configures it: no diff base, which is safe only without change handlers."""

from __future__ import annotations

import kopf

import deploybell.handlers  # noqa: F401 (registers the handlers)
from deploybell.handlers.startup import NoDiffBase


def test_deploybell_registers_no_change_handlers_nor_daemons() -> None:
    """kopf diffs an object against its last handled essence only for create/update/delete/
    resume/field handlers (and daemons/timers react to changes): with none of them, the essence
    NoDiffBase does not build is never read."""
    registry = kopf.get_default_registry()
    assert list(registry._changing.get_all_handlers()) == []
    assert list(registry._spawning.get_all_handlers()) == []
    assert {h.id for h in registry._watching.get_all_handlers()} == {
        "runs",
        "readiness",
        "secret-readiness",
    }


def test_no_diff_base_builds_and_keeps_nothing() -> None:
    storage = NoDiffBase()
    body = kopf.Body({"metadata": {"name": "web"}, "spec": {"manifests": [{"kind": "x"}]}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert not patch
