"""The api layer: parsing both kinds, subscribers, recipient rules, and agreement with crds/."""

import copy
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploybell.api import constants
from deploybell.api.deployjob import (
    HOOK_FIELDS,
    MAX_HOOKS,
    MAX_MANIFEST_SOURCES,
    MAX_MANIFESTS,
    ConfigMapSource,
    DeployJobSpec,
    parse_deployjob,
)
from deploybell.api.errors import SpecError
from deploybell.api.notification import MAX_RECIPIENT_LENGTH, MAX_RECIPIENTS
from deploybell.notify.providers import parse as parse_notification
from deploybell.notify.providers import recipient_errors

CRDS = Path(__file__).resolve().parents[2] / "crds"

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {"replicas": 2},
}


def job(**fields: Any) -> dict[str, Any]:
    """A valid DeployJob spec with `fields` overriding (None removes a field)."""
    spec: dict[str, Any] = {"manifests": [copy.deepcopy(DEPLOYMENT)]}
    spec.update(fields)
    return {k: v for k, v in spec.items() if v is not None}


# --- DeployJob ------------------------------------------------------------------------------


def test_minimal_deployjob_gets_the_crd_defaults() -> None:
    parsed = parse_deployjob(job())
    assert parsed == DeployJobSpec(
        manifests=(DEPLOYMENT,),
        manifests_from=(),
        target_namespace=None,
        service_account_name=None,
        max_wait_seconds=600,
        stability_seconds=0,
        prune=False,
        rollback_on_failure=False,
    )


def test_full_deployjob() -> None:
    parsed = parse_deployjob(
        {
            "manifests": [DEPLOYMENT],
            "manifestsFrom": [
                {"configMapRef": {"name": "web-manifests", "key": "app.yaml"}},
                {"configMapRef": {"name": "more"}},
            ],
            "targetNamespace": "team-a",
            "serviceAccountName": "deployer",
            "maxWaitSeconds": 3600,
            "stabilitySeconds": 300,
            "prune": True,
            "rollbackOnFailure": True,
            "onStart": [{"notify": "chat"}],
            "onSuccess": [{"notify": "chat"}, {"notify": "mail"}],
            "onFailure": [{"notify": "pager"}],
            "onCancel": [{"notify": "chat"}],
            "always": [{"notify": "audit"}],
        }
    )
    assert parsed.manifests_from == (
        ConfigMapSource("web-manifests", "app.yaml"),
        ConfigMapSource("more", "manifests.yaml"),
    )
    assert (parsed.target_namespace, parsed.service_account_name) == ("team-a", "deployer")
    assert (parsed.max_wait_seconds, parsed.stability_seconds) == (3600, 300)
    assert parsed.prune
    assert parsed.rollback_on_failure
    assert parsed.on_success == ("chat", "mail")
    assert parsed.always == ("audit",)


def test_manifests_from_alone_is_enough() -> None:
    parsed = parse_deployjob({"manifestsFrom": [{"configMapRef": {"name": "m"}}]})
    assert parsed.manifests == ()
    assert parsed.manifests_from == (ConfigMapSource("m"),)


def test_nulls_mean_defaults() -> None:
    spec = job() | {"maxWaitSeconds": None, "stabilitySeconds": None, "prune": None}
    parsed = parse_deployjob(spec)
    assert (parsed.max_wait_seconds, parsed.stability_seconds, parsed.prune) == (600, 0, False)


def test_parsed_manifests_do_not_share_state_with_the_input() -> None:
    spec = job()
    parsed = parse_deployjob(spec)
    spec["manifests"][0]["metadata"]["name"] = "changed"
    assert parsed.manifests[0]["metadata"]["name"] == "web"


INVALID_DEPLOYJOBS = [
    ("not an object", ["manifests"], "spec", "must be an object"),
    ("nothing to deploy", {}, "spec", "spec.manifests or spec.manifestsFrom"),
    ("empty lists", {"manifests": [], "manifestsFrom": []}, "spec", "at least one entry"),
    ("unknown field", job(maxWaitTime=600), "spec.maxWaitTime", "unknown field"),
    ("manifests not a list", job(manifests={"a": 1}), "spec.manifests", "must be a list"),
    ("manifest not an object", job(manifests=["x"]), "spec.manifests[0]", "must be an object"),
    (
        "manifest without kind",
        job(manifests=[DEPLOYMENT, {"apiVersion": "v1", "metadata": {"name": "x"}}]),
        "spec.manifests[1].kind",
        "is required",
    ),
    (
        "manifest without apiVersion",
        job(manifests=[{"kind": "ConfigMap", "metadata": {"name": "x"}}]),
        "spec.manifests[0].apiVersion",
        "is required",
    ),
    (
        "manifest without metadata",
        job(manifests=[{"apiVersion": "v1", "kind": "ConfigMap"}]),
        "spec.manifests[0].metadata",
        "must be an object",
    ),
    (
        "manifest with generateName only",
        job(manifests=[{"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "p-"}}]),
        "spec.manifests[0].metadata.name",
        "is required",
    ),
    (
        "too many manifests",
        job(manifests=[DEPLOYMENT] * (MAX_MANIFESTS + 1)),
        "spec.manifests",
        f"at most {MAX_MANIFESTS} items, got {MAX_MANIFESTS + 1}",
    ),
    (
        "source without configMapRef",
        job(manifestsFrom=[{}]),
        "spec.manifestsFrom[0].configMapRef",
        "is required",
    ),
    (
        "configMapRef without name",
        job(manifestsFrom=[{"configMapRef": {"key": "a.yaml"}}]),
        "spec.manifestsFrom[0].configMapRef.name",
        "is required",
    ),
    (
        "configMap name not a DNS subdomain",
        job(manifestsFrom=[{"configMapRef": {"name": "Web_Manifests"}}]),
        "spec.manifestsFrom[0].configMapRef.name",
        "DNS subdomain",
    ),
    (
        "configMap key with a slash",
        job(manifestsFrom=[{"configMapRef": {"name": "m", "key": "a/b.yaml"}}]),
        "spec.manifestsFrom[0].configMapRef.key",
        "ConfigMap key",
    ),
    (
        "too many sources",
        job(manifestsFrom=[{"configMapRef": {"name": "m"}}] * (MAX_MANIFEST_SOURCES + 1)),
        "spec.manifestsFrom",
        "at most 20 items",
    ),
    ("namespace not a label", job(targetNamespace="team.a"), "spec.targetNamespace", "DNS label"),
    ("namespace too long", job(targetNamespace="a" * 64), "spec.targetNamespace", "at most 63"),
    ("empty namespace", job(targetNamespace=""), "spec.targetNamespace", "must not be empty"),
    (
        "service account upper case",
        job(serviceAccountName="Deployer"),
        "spec.serviceAccountName",
        "DNS subdomain",
    ),
    (
        "maxWaitSeconds 0",
        job(maxWaitSeconds=0),
        "spec.maxWaitSeconds",
        "must be between 1 and 3600, got 0",
    ),
    ("maxWaitSeconds 3601", job(maxWaitSeconds=3601), "spec.maxWaitSeconds", "got 3601"),
    ("maxWaitSeconds string", job(maxWaitSeconds="600"), "spec.maxWaitSeconds", "an integer"),
    ("maxWaitSeconds bool", job(maxWaitSeconds=True), "spec.maxWaitSeconds", "an integer"),
    ("maxWaitSeconds float", job(maxWaitSeconds=1.5), "spec.maxWaitSeconds", "an integer"),
    ("stabilitySeconds -1", job(stabilitySeconds=-1), "spec.stabilitySeconds", "0 and 300"),
    ("stabilitySeconds 301", job(stabilitySeconds=301), "spec.stabilitySeconds", "0 and 300"),
    ("prune as string", job(prune="yes"), "spec.prune", "true or false"),
    ("rollback as int", job(rollbackOnFailure=1), "spec.rollbackOnFailure", "true or false"),
    ("hook not a list", job(onStart={"notify": "a"}), "spec.onStart", "must be a list"),
    ("hook without notify", job(onSuccess=[{}]), "spec.onSuccess[0].notify", "is required"),
    ("hook as string", job(onFailure=["chat"]), "spec.onFailure[0]", "must be an object"),
    (
        "notify with a dot",
        job(onCancel=[{"notify": "a.b"}]),
        "spec.onCancel[0].notify",
        "DNS label",
    ),
    (
        "notify upper case",
        job(always=[{"notify": "ok"}, {"notify": "Chat"}]),
        "spec.always[1].notify",
        "DNS label",
    ),
    ("notify too long", job(always=[{"notify": "a" * 64}]), "spec.always[0].notify", "at most 63"),
    (
        "hook with extra key",
        job(onStart=[{"notify": "a", "when": "x"}]),
        "spec.onStart[0].when",
        "unknown field",
    ),
    (
        "too many hooks",
        job(onStart=[{"notify": "a"}] * (MAX_HOOKS + 1)),
        "spec.onStart",
        "at most 20 items",
    ),
    ("source revision a branch", job(source={"revision": "main"}), "spec.source.revision", "hex"),
    ("source revision too short", job(source={"revision": "abc12"}), "spec.source.revision", "hex"),
    (
        "source repository over http",
        job(source={"repository": "http://github.com/acme/web"}),
        "spec.source.repository",
        "an https URL",
    ),
    (
        "source committedAt not a time",
        job(source={"committedAt": "yesterday"}),
        "spec.source.committedAt",
        "RFC 3339",
    ),
    (
        "source committedAt impossible",
        job(source={"committedAt": "2026-02-30T10:00:00Z"}),
        "spec.source.committedAt",
        "RFC 3339",
    ),
    ("source unknown field", job(source={"branch": "main"}), "spec.source.branch", "unknown"),
    (
        "source environment with a line break",
        job(source={"environment": "prod\nX-Injected: 1"}),
        "spec.source.environment",
        "control characters",
    ),
    ("source pullRequest zero", job(source={"pullRequest": 0}), "spec.source.pullRequest", "1"),
    (
        "source pullRequest a string",
        job(source={"pullRequest": "42"}),
        "spec.source.pullRequest",
        "integer",
    ),
    (
        "source pullRequest not the url's",
        job(source={"pullRequest": 7, "url": "https://github.com/acme/web/pull/42"}),
        "spec.source.pullRequest",
        "names pull/merge request 42",
    ),
]


def test_source_is_parsed() -> None:
    source = {
        "repository": "https://github.com/acme/web",
        "revision": "4f2c9e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
        "environment": "production",
        "committedAt": "2026-11-27T09:40:00+01:00",
        "url": "https://github.com/acme/web/pull/42",
    }
    parsed = parse_deployjob(job(source=source)).source
    assert parsed is not None
    assert (parsed.repository, parsed.revision, parsed.environment) == (
        source["repository"],
        source["revision"],
        "production",
    )
    assert (parsed.committed_at, parsed.url) == (source["committedAt"], source["url"])
    assert parse_deployjob(job()).source is None
    assert parsed.pull_request == 42


@pytest.mark.parametrize(
    ("source", "number"),
    [
        ({"url": "https://github.com/acme/web/pull/42"}, 42),
        ({"url": "https://github.com/acme/web/pull/42/files?w=1"}, 42),
        ({"url": "https://gitlab.example.com/group/sub/web/-/merge_requests/7"}, 7),
        ({"url": "https://gitlab.com/acme/web/-/merge_requests/7#note_1"}, 7),
        ({"url": "https://gitea.example.com/acme/web/pulls/5"}, 5),
        ({"url": "https://codeberg.org/acme/web/pulls/5/files"}, 5),
        ({"url": "https://gitea.example.com/acme/pulls/pulls/5"}, 5),  # a repository "pulls"
        ({"url": "https://github.com/acme/pull/pull/6"}, 6),
        ({"url": "https://bitbucket.org/acme/web/pull-requests/8"}, 0),
        ({"url": "https://dev.azure.com/acme/web/_git/web/pullrequest/8"}, 0),
        ({"url": "https://github.com/acme/web/commit/4f2c9e1d"}, 0),
        ({"url": "https://github.com/acme/web/pull/x"}, 0),
        ({"url": "https://github.com/acme/web/pull/42", "pullRequest": 42}, 42),
        ({"url": "https://github.com/acme/web/commit/4f2c9e1d", "pullRequest": 9}, 9),
        ({"pullRequest": 9}, 9),
        ({}, 0),
    ],
)
def test_the_pull_request_is_given_or_read_from_the_url(source: Any, number: int) -> None:
    parsed = parse_deployjob(job(source=source)).source
    assert parsed is not None
    assert parsed.pull_request == number


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [case[1:] for case in INVALID_DEPLOYJOBS],
    ids=[case[0] for case in INVALID_DEPLOYJOBS],
)
def test_invalid_deployjob(spec: Any, field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_deployjob(spec)
    assert caught.value.field == field
    assert message in caught.value.message
    assert str(caught.value) == f"{field}: {caught.value.message}"


def test_spec_error_reads_as_path_then_reason() -> None:
    with pytest.raises(SpecError) as caught:
        parse_deployjob(job(maxWaitSeconds=0))
    assert str(caught.value) == "spec.maxWaitSeconds: must be between 1 and 3600, got 0"
    assert isinstance(caught.value, ValueError)
    copied = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert (copied.field, copied.message) == (caught.value.field, caught.value.message)


# --- subscribers ----------------------------------------------------------------------------

HOOKS = job(
    onStart=[{"notify": "chat"}, {"notify": "chat"}],
    onSuccess=[{"notify": "chat"}, {"notify": "mail"}],
    onFailure=[{"notify": "pager"}, {"notify": "audit"}],
    always=[{"notify": "audit"}, {"notify": "chat"}],
)


@pytest.mark.parametrize(
    ("spec", "event", "expected"),
    [
        (HOOKS, "start", ("chat",)),
        (HOOKS, "success", ("chat", "mail", "audit")),
        (HOOKS, "failure", ("pager", "audit", "chat")),
        (HOOKS, "cancel", ("audit", "chat")),
        (job(onCancel=[{"notify": "x"}]), "cancel", ("x",)),
        (job(always=[{"notify": "x"}]), "start", ()),
        (job(), "success", ()),
    ],
)
def test_subscribers(spec: dict[str, Any], event: str, expected: tuple[str, ...]) -> None:
    assert parse_deployjob(spec).subscribers(event) == expected


def test_subscribers_cover_every_event_and_reject_others() -> None:
    parsed = parse_deployjob(HOOKS)
    for event in constants.EVENTS:
        parsed.subscribers(event)
    with pytest.raises(ValueError, match="unknown event 'succeeded'"):
        parsed.subscribers("succeeded")


# --- Notification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"type": "slack", "recipients": ["#deploys", "@alice"], "secretRef": {"name": "s"}},
            ("slack", ("#deploys", "@alice"), "s", {"threads": True}),
        ),
        (
            {
                "type": "slack",
                "recipients": ["#d"],
                "secretRef": {"name": "s"},
                "slack": {"threads": False},
            },
            ("slack", ("#d",), "s", {"threads": False}),
        ),
        (
            {
                "type": "hipchat",
                "recipients": ["#Ops Room", "@bob"],
                "secretRef": {"name": "h"},
                "hipchat": {"notify": True},
            },
            ("hipchat", ("#Ops Room", "@bob"), "h", {"notify": True}),
        ),
        (
            {"type": "irc", "recipients": ["irc.libera.chat:6697#ops", "localhost##dev"]},
            (
                "irc",
                ("irc.libera.chat:6697#ops", "localhost##dev"),
                None,
                {"notice": True, "join": True},
            ),
        ),
        (
            {
                "type": "irc",
                "recipients": ["h#c"],
                "irc": {"nick": "bell", "notice": False, "tls": True},
            },
            ("irc", ("h#c",), None, {"notice": False, "join": True, "nick": "bell", "tls": True}),
        ),
        (
            {
                "type": "email",
                "recipients": ["ops@example.com", "first.last+deploy@mail.example.org"],
                "email": {"subjectPrefix": "[deploy]"},
            },
            (
                "email",
                ("ops@example.com", "first.last+deploy@mail.example.org"),
                None,
                {"subjectPrefix": "[deploy]"},
            ),
        ),
        (
            {"type": "email", "recipients": ["root@localhost"]},
            ("email", ("root@localhost",), None, {}),
        ),
        ({"type": "webhook", "secretRef": {"name": "hook"}}, ("webhook", (), "hook", {})),
        (
            {
                "type": "webhook",
                "secretRef": {"name": "hook"},
                "webhook": {"headers": {"X-Team": "a"}},
            },
            ("webhook", (), "hook", {"headers": {"X-Team": "a"}}),
        ),
    ],
)
def test_valid_notification(spec: dict[str, Any], expected: tuple[Any, ...]) -> None:
    parsed = parse_notification(spec)
    assert (parsed.type, parsed.recipients, parsed.secret_name, dict(parsed.options)) == expected
    assert parsed.template == {}


def test_notification_template_is_kept() -> None:
    template = {"success": {"text": "{{ job }} is out"}}
    spec = {"type": "webhook", "secretRef": {"name": "h"}, "template": template}
    assert parse_notification(spec).template == template


SLACK: dict[str, Any] = {"type": "slack", "recipients": ["#d"], "secretRef": {"name": "s"}}

INVALID_NOTIFICATIONS = [
    ("no type", {"recipients": ["#d"]}, "spec.type", "is required"),
    ("unknown type", {"type": "pigeon"}, "spec.type", "must be one of slack, hipchat"),
    ("unknown field", SLACK | {"recipient": ["#d"]}, "spec.recipient", "unknown field"),
    ("no recipients", {"type": "irc"}, "spec.recipients", "required for type irc"),
    ("empty recipients", SLACK | {"recipients": []}, "spec.recipients", "required for type slack"),
    ("recipients a string", SLACK | {"recipients": "#d"}, "spec.recipients", "must be a list"),
    ("recipient a number", SLACK | {"recipients": [7]}, "spec.recipients[0]", "must be a string"),
    (
        "too many recipients",
        SLACK | {"recipients": [f"#c{i}" for i in range(MAX_RECIPIENTS + 1)]},
        "spec.recipients",
        "at most 50 items",
    ),
    (
        "recipient too long",
        SLACK | {"recipients": ["#" + "c" * MAX_RECIPIENT_LENGTH]},
        "spec.recipients[0]",
        "at most 320 characters",
    ),
    (
        "duplicate recipient",
        SLACK | {"recipients": ["#d", "@a", "#d"]},
        "spec.recipients[2]",
        "duplicate of spec.recipients[0]",
    ),
    (
        "bare slack name",
        SLACK | {"recipients": ["#d", "deploys"]},
        "spec.recipients[1]",
        "'#channel'",
    ),
    ("slack without secret", {"type": "slack", "recipients": ["#d"]}, "spec.secretRef", "slack"),
    (
        "hipchat without secret",
        {"type": "hipchat", "recipients": ["#d"]},
        "spec.secretRef",
        "hipchat",
    ),
    ("webhook without secret", {"type": "webhook"}, "spec.secretRef", "required for type webhook"),
    ("secretRef without name", SLACK | {"secretRef": {}}, "spec.secretRef.name", "is required"),
    ("secretRef bad name", SLACK | {"secretRef": {"name": "A_B"}}, "spec.secretRef.name", "DNS"),
    (
        "secretRef with key",
        SLACK | {"secretRef": {"name": "s", "key": "token"}},
        "spec.secretRef.key",
        "unknown field",
    ),
    ("other type's block", SLACK | {"irc": {"nick": "x"}}, "spec.irc", "(spec.slack) may be set"),
    ("block not an object", SLACK | {"slack": "yes"}, "spec.slack", "must be an object"),
    ("threads as string", SLACK | {"slack": {"threads": "no"}}, "spec.slack.threads", "true or"),
    (
        "unknown option (kubectl refuses it too)",
        SLACK | {"slack": {"iconEmoji": ":bell:"}},
        "spec.slack.iconEmoji",
        "unknown field",
    ),
    (
        "webhook with recipients",
        {"type": "webhook", "secretRef": {"name": "h"}, "recipients": ["x"]},
        "spec.recipients[0]",
        "type webhook takes no recipients",
    ),
    (
        "irc notice as string",
        {"type": "irc", "recipients": ["h#c"], "irc": {"notice": "yes"}},
        "spec.irc.notice",
        "true or false",
    ),
    (
        "irc empty nick",
        {"type": "irc", "recipients": ["h#c"], "irc": {"nick": ""}},
        "spec.irc.nick",
        "must not be empty",
    ),
    (
        "header with a line break",
        {
            "type": "webhook",
            "secretRef": {"name": "h"},
            "webhook": {"headers": {"X-A": "1\r\nB: 2"}},
        },
        "spec.webhook.headers.X-A",
        "line breaks",
    ),
    (
        "header name with a space",
        {"type": "webhook", "secretRef": {"name": "h"}, "webhook": {"headers": {"X A": "1"}}},
        "spec.webhook.headers",
        "HTTP header name",
    ),
    ("template not an object", SLACK | {"template": "hi"}, "spec.template", "must be an object"),
]


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [case[1:] for case in INVALID_NOTIFICATIONS],
    ids=[case[0] for case in INVALID_NOTIFICATIONS],
)
def test_invalid_notification(spec: Any, field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_notification(spec)
    assert caught.value.field == field
    assert message in caught.value.message


# Per type: recipients that must pass and that must fail, Python's rules and the CRD's alike.
RECIPIENTS: dict[str, tuple[list[str], list[str]]] = {
    "slack": (
        ["#deploys", "@alice", "#ops-alerts_2", "@alice.smith"],
        ["deploys", "#", "@", "# deploys", "#a b", "#a,#b", " #a", ""],
    ),
    "hipchat": (
        ["#room", "@bob", "#Ops Room"],
        ["room", "#", "# room", "#room ", "@"],
    ),
    "irc": (
        ["irc.libera.chat:6697#ops", "localhost#c", "h##dev", "10.0.0.1:6667#x", "h:65535#c"],
        ["#ops", "irc.libera.chat", "host:port#c", "h#", "h#a b", "h#a,#b", "h_x#c", "h:#c"],
    ),
    "email": (
        ["ops@example.com", "a.b+c@x.y.z", "root@localhost", "o'brien@example.ie"],
        ["ops", "@example.com", "ops@", "a@b@c", "a b@c.d", "a@b c"],
    ),
    "discord": (  # thread ids: snowflakes
        ["1234567890123456789", "12345678901234567", "18446744073709551615"],
        [
            "#general",
            "123",
            "0123456789012345678",
            "1234567890123456789 ",
            "x1234567890123456789",
            "123456789012345678901",
            "",
        ],
    ),
}
PYTHON_ONLY_REJECTS: dict[str, list[str]] = {
    # Beyond the CRD's cheap CEL checks: port range and stricter address syntax.
    "irc": ["h:0#c", "h:65536#c", "h:99999#c"],
    "email": [
        "Ops <ops@example.com>",
        ".a@b.c",
        "a..b@c.d",
        "a@-b.c",
        "a@b_c.d",
        "a" * 65 + "@b.c",
    ],
    "discord": ["18446744073709551616", "99999999999999999999"],  # over 2^64 - 1
}


def _cases(valid: bool) -> list[tuple[str, str]]:
    return [(t, r) for t, (ok, bad) in RECIPIENTS.items() for r in (ok if valid else bad)]


@pytest.mark.parametrize(("type_", "recipient"), _cases(valid=True))
def test_recipient_accepted(type_: str, recipient: str) -> None:
    assert recipient_errors(type_, [recipient]) == []
    assert _cel_pattern(type_).fullmatch(recipient)


@pytest.mark.parametrize(("type_", "recipient"), _cases(valid=False))
def test_recipient_rejected_by_python_and_crd(type_: str, recipient: str) -> None:
    assert recipient_errors(type_, ["placeholder", recipient])[-1].startswith(
        "spec.recipients[1]: "
    )
    assert not _cel_pattern(type_).fullmatch(recipient)


@pytest.mark.parametrize(
    ("type_", "recipient"), [(t, r) for t, rs in PYTHON_ONLY_REJECTS.items() for r in rs]
)
def test_recipient_rejected_by_python_only(type_: str, recipient: str) -> None:
    assert len(recipient_errors(type_, [recipient])) == 1


def test_recipient_errors_lists_every_bad_one() -> None:
    errors = recipient_errors("irc", ["h#ok", "bad", "h:70000#x"])
    assert [e.split(":", 1)[0] for e in errors] == ["spec.recipients[1]", "spec.recipients[2]"]
    assert "from 1 to 65535, got '70000'" in errors[1]


def test_unknown_types_are_named() -> None:
    (error,) = recipient_errors("pigeon", ["#x"])
    assert error.startswith("spec.type: must be one of slack, hipchat, irc, email, webhook, ")
    assert error.endswith("got 'pigeon'")


# --- the CRDs in crds/ agree with the api package -------------------------------------------


def _load_crd(plural: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((CRDS / f"{constants.GROUP}_{plural}.yaml").read_text())
    return crd


def _version(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return dict(version)


def _spec_schema(plural: str) -> dict[str, Any]:
    schema = _version(_load_crd(plural))["schema"]["openAPIV3Schema"]
    return dict(schema["properties"]["spec"])


def _cel_pattern(type_: str) -> re.Pattern[str]:
    """The regex the Notification CRD's CEL rule uses for `type_` recipients."""
    for rule in _spec_schema("notifications")["x-kubernetes-validations"]:
        if f"self.type != '{type_}'" in rule["rule"]:
            match = re.search(r"matches\(r'([^']*)'\)", rule["rule"])
            assert match, rule["rule"]
            return re.compile(match.group(1))
    raise AssertionError(f"no CEL rule for {type_} recipients")


@pytest.mark.parametrize(
    ("plural", "kind", "short_name"),
    [("deployjobs", "DeployJob", "dj"), ("notifications", "Notification", "dbn")],
)
def test_crd_names(plural: str, kind: str, short_name: str) -> None:
    crd = _load_crd(plural)
    assert crd["metadata"]["name"] == f"{plural}.{constants.GROUP}"
    assert crd["spec"]["group"] == constants.GROUP
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["kind"] == kind
    assert crd["spec"]["names"]["shortNames"] == [short_name]
    assert crd["spec"]["names"]["categories"] == ["deploybell"]
    version = _version(crd)
    assert (version["name"], version["served"], version["storage"]) == (
        constants.VERSION,
        True,
        True,
    )
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize(
    ("plural", "columns"),
    [
        (
            "deployjobs",
            [
                ("Phase", "string", ".status.phase"),
                ("Run", "integer", ".status.run"),
                ("Reason", "string", ".status.reason"),
                ("Age", "date", ".metadata.creationTimestamp"),
            ],
        ),
        (
            "notifications",
            [
                ("Type", "string", ".spec.type"),
                ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
                ("Age", "date", ".metadata.creationTimestamp"),
            ],
        ),
    ],
)
def test_crd_printer_columns(plural: str, columns: list[tuple[str, str, str]]) -> None:
    printed = _version(_load_crd(plural))["additionalPrinterColumns"]
    assert [(c["name"], c["type"], c["jsonPath"]) for c in printed] == columns


def test_deployjob_hooks() -> None:
    properties = _spec_schema("deployjobs")["properties"]
    hooks = [
        name
        for name, schema in properties.items()
        if schema.get("type") == "array" and "notify" in schema["items"].get("properties", {})
    ]
    assert tuple(hooks) == HOOK_FIELDS
    for name in hooks:
        assert properties[name]["maxItems"] == MAX_HOOKS
        assert properties[name]["items"]["required"] == ["notify"]
        notify = properties[name]["items"]["properties"]["notify"]
        assert (notify["maxLength"], notify["pattern"]) == (63, "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_deployjob_ranges_and_defaults_match_the_parser() -> None:
    properties = _spec_schema("deployjobs")["properties"]
    defaults = parse_deployjob(job())
    for field, attribute in [
        ("maxWaitSeconds", "max_wait_seconds"),
        ("stabilitySeconds", "stability_seconds"),
        ("prune", "prune"),
        ("rollbackOnFailure", "rollback_on_failure"),
    ]:
        assert properties[field]["default"] == getattr(defaults, attribute), field
    for field in ("maxWaitSeconds", "stabilitySeconds"):
        schema = properties[field]
        for value in (schema["minimum"], schema["maximum"]):
            parse_deployjob(job(**{field: value}))
        for value in (schema["minimum"] - 1, schema["maximum"] + 1):
            with pytest.raises(SpecError):
                parse_deployjob(job(**{field: value}))
    assert properties["manifests"]["maxItems"] == MAX_MANIFESTS
    assert properties["manifestsFrom"]["maxItems"] == MAX_MANIFEST_SOURCES
    key = properties["manifestsFrom"]["items"]["properties"]["configMapRef"]["properties"]["key"]
    assert key["default"] == ConfigMapSource("x").key


def test_deployjob_manifests_are_embedded_resources() -> None:
    items = _spec_schema("deployjobs")["properties"]["manifests"]["items"]
    assert items["type"] == "object"
    assert items["x-kubernetes-embedded-resource"] is True
    assert items["x-kubernetes-preserve-unknown-fields"] is True


def test_every_schema_field_is_described() -> None:
    undescribed: list[str] = []

    def walk(schema: dict[str, Any], path: str) -> None:
        for name, child in schema.get("properties", {}).items():
            if name not in ("apiVersion", "kind", "metadata") and not child.get("description"):
                undescribed.append(f"{path}.{name}")
            walk(child, f"{path}.{name}")
        if "items" in schema:
            walk(schema["items"], f"{path}[]")

    for plural in ("deployjobs", "notifications"):
        walk(_version(_load_crd(plural))["schema"]["openAPIV3Schema"], plural)
    assert undescribed == []
