"""`deploybell validate`: every broken file in tests/golden/validate/ and its exact findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploybell.cli import main
from deploybell.notify.providers import NAMES
from deploybell.tools import schema

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "validate"

# file → the exact lines validate prints (stdout), in order. All but the last exit 1.
BROKEN: dict[str, list[str]] = {
    "01-unknown-field.yaml": [
        "01-unknown-field.yaml:9: error: DeployJob web: spec.onSucess: unknown field",
    ],
    "02-max-wait-out-of-range.yaml": [
        "02-max-wait-out-of-range.yaml:6: error: DeployJob web: spec.maxWaitSeconds: "
        "must be between 1 and 3600, got 7200",
        "02-max-wait-out-of-range.yaml:7: error: DeployJob web: spec.stabilitySeconds: "
        "must be an integer, got '30'",
    ],
    "03-no-manifests.yaml": [
        "03-no-manifests.yaml:5: error: DeployJob web: "
        "spec.manifests or spec.manifestsFrom must have at least one entry",
    ],
    "04-manifest-without-name.yaml": [
        "04-manifest-without-name.yaml:9: error: DeployJob web: "
        "spec.manifests[0].metadata.name: is required, got None",
    ],
    "05-hook-entries.yaml": [
        "05-hook-entries.yaml:9: error: DeployJob web: spec.onStart[0].notify: "
        "must be a DNS label (lowercase letters, digits and '-'), got 'Deploy_Notification'",
        "05-hook-entries.yaml:11: error: DeployJob web: spec.onFailure[0].notfy: unknown field",
        "05-hook-entries.yaml:11: error: DeployJob web: spec.onFailure[0].notify: is required",
    ],
    "06-configmap-source.yaml": [
        "06-configmap-source.yaml:7: error: DeployJob web: "
        "spec.manifestsFrom[0].configMapRef.name: is required",
        "06-configmap-source.yaml:11: error: DeployJob web: "
        "spec.manifestsFrom[1].configMapRef.key: must be a ConfigMap key "
        "(letters, digits, '-', '_', '.'), got 'app/manifests.yaml'",
    ],
    "07-notification-type.yaml": [
        "07-notification-type.yaml:6: error: Notification chat: spec.type: "
        f"must be one of {', '.join(NAMES)}, got 'msn'",
    ],
    "08-slack-recipients.yaml": [
        "08-slack-recipients.yaml:9: error: Notification slack: spec.recipients[1]: "
        "a slack recipient must be '#channel' or '@user', got 'deploys'",
        "08-slack-recipients.yaml:10: error: Notification slack: spec.recipients[2]: "
        "a slack recipient must be '#channel' or '@user', got '@alice smith'",
    ],
    "09-slack-without-secret.yaml": [
        "09-slack-without-secret.yaml:5: error: Notification slack: spec.secretRef: "
        "a Secret with the credentials is required for type slack",
    ],
    "10-email-without-recipients.yaml": [
        "10-email-without-recipients.yaml:7: error: Notification mail: spec.recipients: "
        "at least one recipient is required for type email",
    ],
    "11-irc-recipients.yaml": [
        "11-irc-recipients.yaml:8: error: Notification irc: spec.recipients[0]: "
        "an irc port must be a number from 1 to 65535, got '70000'",
        "11-irc-recipients.yaml:9: error: Notification irc: spec.recipients[1]: "
        "an irc recipient must be 'host[:port]#channel' (e.g. 'irc.libera.chat:6697#ops'), "
        "got '#ops'",
    ],
    "12-other-options-block.yaml": [
        "12-other-options-block.yaml:8: error: Notification mail: spec.slack: "
        "only the options block for the notification type (spec.email) may be set",
    ],
    "13-template-syntax.yaml": [
        # Line 3 of the template is line 13 of the file.
        "13-template-syntax.yaml:13: error: Notification mail: spec.template.text: "
        "line 3: unexpected '}'",
    ],
    "14-yaml-syntax.yaml": [
        "14-yaml-syntax.yaml:8: error: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 7)",
    ],
    "15-unquoted-channel.yaml": [
        "15-unquoted-channel.yaml:8: error: Notification slack: spec.recipients[0]: "
        "must be a string, got null "
        '(an unquoted #channel starts a YAML comment: quote it, "#deploys")',
    ],
    "16-header-and-duplicates.yaml": [
        "16-header-and-duplicates.yaml:1: error: Notification mail: apiVersion: "
        "must be deploybell.io/v1alpha1, got 'deploybell.io/v1'",
        "16-header-and-duplicates.yaml:11: error: DeployJob (unnamed): metadata.name: is required",
        "16-header-and-duplicates.yaml:18: error: Notificaton typo: kind: "
        "must be DeployJob or Notification in deploybell.io, got 'Notificaton'",
        "16-header-and-duplicates.yaml:31: error: DeployJob web: spec.maxWaitSeconds: "
        "duplicate field (first at line 28)",
    ],
    "18-irc-options.yaml": [
        "18-irc-options.yaml:8: error: Notification irc: spec.recipients[1]: an irc channel must "
        "be at most 50 characters without spaces, commas or control characters, "
        "got '#a-channel-name-that-is-longer-than-fifty-characters-ok'",
    ],
    "19-irc-nick.yaml": [
        "19-irc-nick.yaml:10: error: Notification irc: spec.irc.nick: must be an IRC nick (a "
        "letter or one of []\\`_^{|} first, then also digits and -), got '1bell'",
    ],
    "19-template-render.yaml": [
        "19-template-render.yaml:11: error: Notification team-chat: spec.template.title: "
        "fails to render for a sample start message (UndefinedError: 'verb' is undefined)",
        "19-template-render.yaml:12: error: Notification team-chat: spec.template.text: "
        "fails to render for a sample start message "
        "(UndefinedError: tuple object has no element 0)",
        "19-template-render.yaml:22: error: Notification escape: spec.template.title: "
        "fails to render for a sample start message "
        "(SecurityError: access to attribute '__class__' of 'str' object is unsafe.)",
    ],
}
WARNINGS_ONLY = [
    "17-warnings-only.yaml:11: warning: DeployJob team-a/web: spec.onFailure[0].notify: "
    "Notification oncall is not defined in the given files (it must exist in the cluster)",
]


def validate(capsys: pytest.CaptureFixture[str], *files: str | Path) -> tuple[int, list[str], str]:
    code = main(["validate", *map(str, files)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.fixture(autouse=True)
def in_golden_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Findings name files as given: run where the golden files are, so they read short."""
    monkeypatch.chdir(GOLDEN)


def test_every_golden_file_is_in_the_table() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.yaml")) == sorted(
        [*BROKEN, "17-warnings-only.yaml"]
    )


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_file_gives_exact_findings_and_exit_1(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, lines, _ = validate(capsys, name)
    assert lines == BROKEN[name]
    assert code == 1


def test_warnings_alone_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = validate(capsys, "17-warnings-only.yaml")
    assert lines == WARNINGS_ONLY
    assert code == 0
    assert err == "1 file(s), 2 deploybell object(s): 0 error(s), 1 warning(s)\n"


def test_files_are_reported_in_the_order_given(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = validate(capsys, "09-slack-without-secret.yaml", "01-unknown-field.yaml")
    assert [line.split(":")[0] for line in lines] == [
        "09-slack-without-secret.yaml",
        "01-unknown-field.yaml",
    ]
    assert code == 1
    assert err == "2 file(s), 2 deploybell object(s): 2 error(s), 0 warning(s)\n"


def test_the_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted((ROOT / "examples" / "seed").glob("*.yaml"))
    files += sorted((ROOT / "examples" / "notifications").glob("*.yaml"))
    code, lines, _ = validate(capsys, *files)
    assert (code, lines) == (0, [])


def test_a_notification_in_another_file_counts_as_defined(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed = ROOT / "examples" / "seed"
    alone = validate(capsys, seed / "deployjob.yaml")
    together = validate(capsys, seed / "deployjob.yaml", seed / "notification.yaml")
    assert alone[0] == 0
    assert [line.split(": ", 2)[1] for line in alone[1]] == ["warning"]
    assert together[:2] == (0, [])


def test_notifications_in_another_namespace_do_not_count(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "two-namespaces.yaml"
    path.write_text(
        "apiVersion: deploybell.io/v1alpha1\nkind: DeployJob\n"
        "metadata: {name: web, namespace: team-a}\n"
        "spec: {manifests: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}], "
        "always: [{notify: chat}]}\n"
        "---\n"
        "apiVersion: deploybell.io/v1alpha1\nkind: Notification\n"
        "metadata: {name: chat, namespace: team-b}\n"
        "spec: {type: email, recipients: [a@example.com]}\n"
    )
    code, lines, _ = validate(capsys, path)
    assert code == 0
    assert lines == [
        f"{path}:4: warning: DeployJob team-a/web: spec.always[0].notify: Notification chat is "
        "not defined in the given files (it must exist in the cluster)"
    ]


def test_items_of_a_list_are_checked_with_their_own_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(
        "apiVersion: v1\n"
        "kind: List\n"
        "items:\n"
        "  - apiVersion: deploybell.io/v1alpha1\n"
        "    kind: Notification\n"
        "    metadata: {name: hook}\n"
        "    spec:\n"
        "      type: webhook\n"
        "      secretRef: {name: Hook}\n"
    )
    code, lines, _ = validate(capsys, path)
    assert code == 1
    assert lines == [
        f"{path}:9: error: Notification hook: spec.secretRef.name: must be a DNS subdomain "
        "(lowercase letters, digits, '-' and '.'), got 'Hook'"
    ]


def test_a_missing_file_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = validate(capsys, "no-such-file.yaml")
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith("no-such-file.yaml:0: error: cannot read: ")


def test_other_kinds_and_empty_documents_are_ignored(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {}\nspec: 3\n")
    code, lines, err = validate(capsys, path)
    assert (code, lines) == (0, [])
    assert err == "1 file(s), 0 deploybell object(s): 0 error(s), 0 warning(s)\n"


def test_without_the_crds_validate_says_where_it_looked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(schema.CRDS_ENV, str(tmp_path))
    code, lines, err = validate(capsys, "01-unknown-field.yaml")
    assert code == 2
    assert lines == []
    assert err == (
        f"error: no CRD for DeployJob in {tmp_path}; set {schema.CRDS_ENV} to deploybell's "
        "crds/ directory\n"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"apiVersion": "x", "kind": "DeployJob", "metadata": {}, "spek": {}},
            [("spec", "is required"), ("spek", "unknown field")],
            id="required-and-unknown-at-the-top",
        ),
        pytest.param(
            {"spec": {"manifests": [{"any": {"thing": 1}}], "prune": "yes"}},
            [("spec.prune", "must be true or false, got 'yes'")],
            id="embedded-objects-keep-unknown-fields",
        ),
        pytest.param(
            {"spec": {"manifests": [], "status": 1}, "status": {"phase": "Whatever"}},
            [("spec.status", "unknown field")],
            id="status-is-ignored-at-the-top-only",
        ),
    ],
)
def test_structural_problems(body: dict[str, object], expected: list[tuple[str, str]]) -> None:
    assert schema.problems("DeployJob", body) == expected


def test_an_object_defined_twice_is_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    notification = (
        "apiVersion: deploybell.io/v1alpha1\nkind: Notification\nmetadata: {name: chat}\n"
        "spec: {type: email, recipients: [a@example.com]}\n"
    )
    (tmp_path / "a.yaml").write_text(notification)
    (tmp_path / "b.yaml").write_text("# the same again\n" + notification)
    code, lines, _ = validate(capsys, tmp_path / "a.yaml", tmp_path / "b.yaml")
    assert code == 0
    assert lines == [
        f"{tmp_path}/b.yaml:4: warning: Notification chat: metadata.name: defined again "
        f"(first at {tmp_path}/a.yaml:1); the last one wins"
    ]
