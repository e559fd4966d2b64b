"""The README's generated API reference is current, and its CLI section matches the commands."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from deploybell import cli, kubectl_plugin

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def gen_api_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_docs", ROOT / "hack" / "gen-api-docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_up_to_date(gen_api_docs: ModuleType) -> None:
    wanted = gen_api_docs.replaced(README, gen_api_docs.reference())
    assert wanted == README, "run: .venv/bin/python hack/gen-api-docs.py --write"


def test_api_reference_has_every_spec_field_of_both_kinds(gen_api_docs: ModuleType) -> None:
    generated = gen_api_docs.reference()
    for field in ("maxWaitSeconds", "onCancel[].notify", "always", "recipients", "secretRef.name"):
        assert f"| `{field}` |" in generated


@pytest.mark.parametrize(
    ("shippable", "deploybell"),
    [
        ("on_start", "onStart"),
        ("on_success", "onSuccess"),
        ("on_failure", "onFailure"),
        ("on_cancel", "onCancel"),
        ("- NOTIFY: x", "- notify: x"),
        ("pointer.recipients", "recipients"),
        ("integration", "secretRef"),
        ("maxWaitTime", "maxWaitSeconds"),
        ("stabilityDuration", "stabilitySeconds"),
    ],
)
def test_migration_table_maps_each_shippable_term(shippable: str, deploybell: str) -> None:
    section = README.split("## Migrating from Shippable", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert any(f"`{shippable}`" in row and f"`{deploybell}`" in row for row in rows), shippable


DEPLOYBELL = ("run", "validate", "render", "notify-test")
PLUGIN = ("status", "history", "dora", "cancel", "redeploy", "test")


def test_every_command_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "{" + ",".join(DEPLOYBELL) + "}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        kubectl_plugin.main(["--help"])
    plugin_help = capsys.readouterr().out.splitlines()
    section = README.split("## CLI and kubectl plugin", 1)[1].split("\n## ", 1)[0]
    for command in DEPLOYBELL:
        assert f"`deploybell {command}" in section, command
    for command in PLUGIN:
        assert any(line.split()[:1] == [command] for line in plugin_help), command
        assert f"`kubectl deploybell {command}" in section, command
