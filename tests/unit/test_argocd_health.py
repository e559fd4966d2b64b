"""The Argo CD health check (manifests/argocd/deploybell.io/DeployJob/health.lua), run by a real
Lua 5.1 interpreter (Argo CD's gopher-lua speaks 5.1) the way Argo CD tests its resource
customizations: each health_test.yaml case names an object captured from a real run
(hack/capture-argocd-fixtures.py) and the health status and message expected for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "manifests" / "argocd" / "deploybell.io" / "DeployJob"
CASES = yaml.safe_load((CHECK / "health_test.yaml").read_text())["tests"]


def lua_value(runtime: Any, value: Any) -> Any:
    """JSON-shaped data as Argo CD hands it to Lua: objects and arrays become tables."""
    if isinstance(value, dict):
        return runtime.table_from(
            {k: lua_value(runtime, v) for k, v in value.items() if v is not None}
        )
    if isinstance(value, list):
        return runtime.table_from([lua_value(runtime, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> dict[str, str]:
    runtime = lua51.LuaRuntime(register_eval=False, unpack_returned_tuples=True)
    runtime.globals().obj = lua_value(runtime, obj)
    result = runtime.execute((CHECK / "health.lua").read_text())
    return {key: result[key] for key in ("status", "message") if result[key] is not None}


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((CHECK / case["inputPath"]).read_text())
    assert health(obj) == case["healthStatus"]


def test_every_captured_fixture_has_a_case() -> None:
    fixtures = {f"testdata/{p.name}" for p in (CHECK / "testdata").glob("*.yaml")}
    assert fixtures == {c["inputPath"] for c in CASES}
    statuses = {c["healthStatus"]["status"] for c in CASES}
    assert statuses == {"Progressing", "Healthy", "Degraded", "Suspended"}


def test_fixtures_come_from_real_runs() -> None:
    """Captured objects, not hand-written ones: the operator's status fields are all there."""
    for path in (CHECK / "testdata").glob("*.yaml"):
        obj = yaml.safe_load(path.read_text())
        status = obj.get("status")
        if status is None:
            assert path.stem == "no-status"
            continue
        assert {"observedGeneration", "phase", "run", "trigger", "conditions"} <= set(status), path


def test_argocd_cm_carries_the_same_script() -> None:
    config_map = yaml.safe_load((ROOT / "manifests" / "argocd" / "argocd-cm.yaml").read_text())
    assert config_map["metadata"]["name"] == "argocd-cm"
    script = config_map["data"]["resource.customizations.health.deploybell.io_DeployJob"]
    assert script == (CHECK / "health.lua").read_text()


def test_an_unknown_phase_is_unknown() -> None:
    status = {"phase": "Exploded", "run": 1, "observedGeneration": 1}
    got = health({"metadata": {"generation": 1}, "status": status})
    assert got == {"status": "Unknown", "message": "Run 1 is in phase Exploded"}
