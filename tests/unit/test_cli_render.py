"""`deploybell render`: golden previews per provider and event, from the providers' renderers.

To regenerate the golden files after an intended change of a renderer, run
    DEPLOYBELL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_cli_render.py
and review the diff of tests/golden/render/ before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploybell.api.constants import EVENTS
from deploybell.cli import main
from deploybell.notify.providers import NAMES

GOLDEN = Path(__file__).resolve().parents[2] / "tests" / "golden" / "render"
# One Notification per registered type, `<type>.yaml`, beside its `<type>.<event>.txt` previews.
NOTIFICATIONS = [str(GOLDEN / f"{type_}.yaml") for type_ in NAMES]
UPDATE = os.environ.get("DEPLOYBELL_UPDATE_GOLDEN") == "1"


@pytest.fixture(autouse=True)
def default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The e-mail sender comes from DEPLOYBELL_SMTP_FROM: previews use the default one."""
    monkeypatch.delenv("DEPLOYBELL_SMTP_FROM", raising=False)


def render(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["render", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("type_", NAMES)
def test_preview_matches_golden(capsys: pytest.CaptureFixture[str], type_: str, event: str) -> None:
    code, out, err = render(capsys, str(GOLDEN / f"{type_}.yaml"), "--event", event)
    assert (code, err) == (0, "")
    golden = GOLDEN / f"{type_}.{event}.txt"
    if UPDATE:
        golden.write_text(out, encoding="utf-8")
    assert out == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if the change is intended, regenerate (see this module's doc)"
    )


def test_every_notification_without_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = render(capsys, *NOTIFICATIONS, "--event", "success")
    assert code == 0
    types = [
        line.split("(")[1].split(")")[0]
        for line in out.splitlines()
        if line.startswith("Notification ")
    ]
    assert types == list(NAMES)


def test_the_template_is_used(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = render(capsys, *NOTIFICATIONS, "--event", "failure", "--type", "email")
    assert "Subject: [deploy] team-a/web: failed (run 3)" in out.splitlines()


def test_a_template_that_cannot_render_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """As in the cluster (Ready=False): a template failing on every sample message is refused."""
    path = tmp_path / "n.yaml"
    path.write_text(
        "apiVersion: deploybell.io/v1alpha1\nkind: Notification\nmetadata: {name: n}\n"
        "spec: {type: irc, recipients: ['irc.example.org#ops'], template: {text: '{{ nope }}'}}\n"
    )
    code, out, err = render(capsys, str(path), "--event", "start")
    assert code == 1
    assert out == ""
    assert err == (
        f"{path}:4: error: Notification n: spec.template.text: fails to render for a sample "
        "start message (UndefinedError: 'nope' is undefined)\n"
    )


def test_an_invalid_notification_is_reported_with_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(
        "apiVersion: deploybell.io/v1alpha1\nkind: Notification\nmetadata: {name: n}\n"
        "spec:\n  type: slack\n  recipients: [deploys]\n  secretRef: {name: s}\n"
    )
    code, out, err = render(capsys, str(path))
    assert (code, out) == (1, "")
    assert err == (
        f"{path}:6: error: Notification n: spec.recipients[0]: "
        "a slack recipient must be '#channel' or '@user', got 'deploys'\n"
    )


def test_no_notification_of_the_type(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = render(capsys, str(GOLDEN.parent / "validate" / "01-unknown-field.yaml"))
    assert (code, out) == (1, "")
    assert err.startswith("error: no Notification in ")


def test_what_the_provider_would_refuse_is_said_per_recipient(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYBELL_SMTP_FROM", "not an address")
    code, out, _ = render(capsys, *NOTIFICATIONS, "--type", "email")
    assert code == 0
    assert (
        "to team-a@example.com: not sendable: the sender (from) must be like 'bell@example.com' "
        "or 'Deploybell <bell@example.com>', got 'not an address'"
    ) in out.splitlines()
