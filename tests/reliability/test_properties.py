"""Property tests: no exception escapes parsing, health or rendering, whatever the input.

Short by default; `make reliability` (RELIABILITY_LONG=1) runs 10,000 examples per property.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploybell.api.deployjob import parse_deployjob
from deploybell.api.errors import SpecError
from deploybell.clients.transport import apply_body
from deploybell.deploy.health import evaluate, pod_problems
from deploybell.notify.model import Message, PodDiagnosis, WarningEvent
from deploybell.notify.providers import _email_mime as email
from deploybell.notify.providers import _irc_lines as irc
from deploybell.notify.providers import _slack_blocks as slack
from deploybell.notify.providers import parse as parse_notification
from deploybell.notify.providers import webhook
from deploybell.notify.providers.base import Title

EXAMPLES = 10_000 if os.environ.get("RELIABILITY_LONG") == "1" else 200
PROFILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# JSON-like values, as a YAML or JSON document can hold them.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
spec_keys = st.sampled_from(
    [
        "manifests",
        "manifestsFrom",
        "targetNamespace",
        "serviceAccountName",
        "maxWaitSeconds",
        "stabilitySeconds",
        "prune",
        "rollbackOnFailure",
        "onStart",
        "onSuccess",
        "onFailure",
        "onCancel",
        "always",
        "type",
        "recipients",
        "secretRef",
        "template",
        "slack",
        "irc",
    ]
)
specs = st.dictionaries(spec_keys, json_values, max_size=6)
# Anything a user can put in a manifest or a message, control characters included.
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@PROFILE
@given(specs)
def test_spec_parsing_raises_only_spec_errors(spec: dict[str, Any]) -> None:
    for parse in (parse_deployjob, parse_notification):
        error: SpecError | None = None
        try:
            parse(spec)
        except SpecError as e:
            error = e
        assert error is None or error.field.startswith("spec"), error


kinds = st.sampled_from(
    [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "Pod",
        "Service",
        "PersistentVolumeClaim",
        "CustomResourceDefinition",
        "Gadget",
    ]
)
groups = st.sampled_from(["apps/v1", "batch/v1", "v1", "apiextensions.k8s.io/v1", "x.io/v1"])


@PROFILE
@given(kinds, groups, json_values, json_values, json_values)
def test_health_evaluation_never_raises(
    kind: str, api_version: str, metadata: Any, spec: Any, status: Any
) -> None:
    obj = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }
    health = evaluate(obj)
    assert health.status.value in {"Current", "InProgress", "Failed", "Terminating", "NotFound"}
    assert isinstance(health.message, str)
    pod_problems(obj)


messages = st.builds(
    Message,
    job=texts,
    namespace=texts,
    run=st.integers(0, 10**6),
    event=st.sampled_from(["start", "success", "failure", "cancel"]),
    phase=texts,
    reason=texts,
    message=texts,
    images=st.lists(texts, max_size=3).map(tuple),
    cluster=texts,
    link=texts,
    idempotency_key=texts,
    pods=st.lists(
        st.builds(PodDiagnosis, pod=texts, container=texts, reason=texts, message=texts), max_size=3
    ).map(tuple),
    warnings=st.lists(
        st.builds(WarningEvent, object=texts, reason=texts, message=texts), max_size=3
    ).map(tuple),
)
overrides = st.none() | st.builds(Title, title=st.none() | texts, text=st.none() | texts)


@PROFILE
@given(messages, overrides)
def test_irc_lines_never_carry_line_breaks_or_exceed_the_limit(
    message: Message, override: Title | None
) -> None:
    for line in irc.lines(message, override, command="NOTICE", target="#ops", nick="deploybell"):
        assert not set(line) & {"\r", "\n", "\x00"}
        wire = f":deploybell!{'u' * 10}@{'h' * 63} NOTICE #ops :{line}\r\n".encode()
        assert len(wire) <= 512


@PROFILE
@given(messages, overrides)
def test_email_headers_never_contain_newlines(message: Message, override: Title | None) -> None:
    mail = email.render_email(
        message,
        sender="deploybell@example.test",
        recipient="team@example.test",
        date=datetime.now(UTC),
        override=override,
    )
    for name, value in mail.items():
        folded = str(value).replace("\r\n ", " ").replace("\n ", " ")
        assert "\n" not in folded, (name, value)
        assert "\r" not in folded, (name, value)
    assert mail["To"] == "team@example.test"
    assert "Bcc" not in mail


@PROFILE
@given(messages, overrides)
def test_json_bodies_always_parse(message: Message, override: Title | None) -> None:
    body = json.loads(webhook.serialize(message, override))
    assert body["specversion"] == "1.0"
    json.loads(json.dumps(slack.render(message, override).as_payload()))


# --- the apply path: what the API server's YAML reader gets -------------------------------------

# Text people put in manifests: emoji (outside the BMP), CJK, right-to-left scripts, accents, and
# every control character but NUL, with the line breaks YAML knows besides \n (NEL, LS, PS).
_WORLD = "🚀✅🎉👩‍💻𝔘𐍈中文日本語한국어שלוםمرحباé ñ"
_CONTROLS = "".join(map(chr, [*range(1, 32), *range(0x7F, 0xA0), 0x2028, 0x2029, 0xFEFF, 0xFFFE]))
apply_texts = st.text(
    alphabet=st.sampled_from(_WORLD + _CONTROLS + "ab \"'\\:#{}[],&*!|>%@`-")
    | st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
    max_size=60,
)
# A manifest's worth of fields: every string in it (keys and values) from apply_texts.
manifest_values = st.recursive(
    st.none() | st.booleans() | st.integers() | apply_texts,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(apply_texts, children, max_size=5)
    ),
    max_leaves=25,
)
# The characters go-yaml's reader accepts raw, less the ones it reads as line breaks.
_YAML_RAW = re.compile(
    "[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*"
)


@PROFILE
@given(st.dictionaries(apply_texts, manifest_values, max_size=6))
def test_an_apply_body_is_utf8_yaml_that_reads_back_the_same(fields: dict[str, Any]) -> None:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, **fields}
    body = apply_body(manifest)
    text = body.decode("utf-8", errors="strict")
    assert not re.search(r"\\u[dD][89a-fA-F]", text), "a surrogate escape: YAML refuses it"
    assert _YAML_RAW.fullmatch(text), "a raw character YAML refuses or reads as a line break"
    assert json.loads(body) == manifest
    assert yaml.safe_load(body) == manifest
