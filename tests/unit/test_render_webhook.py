"""The webhook body: a CloudEvents 1.0 event built as data, serialized to valid JSON always."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploybell.notify.model import Message, sample
from deploybell.notify.providers import webhook as render
from deploybell.notify.providers.base import Title

NOW = datetime(2026, 11, 27, 12, 30, 5, tzinfo=UTC)


def roundtrip(value: Any) -> Any:
    return json.loads(json.dumps(value))


@pytest.mark.parametrize(
    ("event", "time"),
    [
        ("start", "2026-11-27T10:00:00Z"),
        ("success", "2026-11-27T10:01:05Z"),
        ("failure", "2026-11-27T10:01:05Z"),
        ("cancel", "2026-11-27T10:01:05Z"),
    ],
)
def test_event_attributes(event: str, time: str) -> None:
    message = sample(event)
    cloud_event = render.event(message, now=NOW)
    assert cloud_event == {
        "specversion": "1.0",
        "id": f"3/{event}/deploy-notification/#deploys",
        "source": "/deploybell/prod-eu/namespaces/team-a/deployjobs/web",
        "type": f"io.deploybell.deployjob.{event}",
        "subject": "team-a/web",
        "time": time,
        "datacontenttype": "application/json",
        "data": message.as_data(),
    }


def test_failure_data_carries_the_diagnosis() -> None:
    data = roundtrip(render.event(sample("failure"))["data"])
    assert data["title"] == "✖ team-a/web failed on prod-eu (run 3)"
    assert data["summary"].startswith("CrashLoopBackOff after 1m05s: pod web-7d9f8-x2kqp")
    assert data["pods"] == [
        {
            "pod": "web-7d9f8-x2kqp",
            "container": "app",
            "reason": "CrashLoopBackOff",
            "message": "back-off 40s restarting failed container",
            "exit_code": 1,
            "restart_count": 5,
        }
    ]
    assert data["warnings"][0]["reason"] == "BackOff"
    assert data["images"] == ["registry.example/web:1.4.3"]
    assert data["link"] == "https://dashboard.example/team-a/web"


def test_time_falls_back_to_now_and_is_absent_without_it() -> None:
    timeless = dataclasses.replace(sample("start"), started_at="", finished_at="")
    assert render.event(timeless, now=NOW)["time"] == "2026-11-27T12:30:05Z"
    naive = datetime(2026, 11, 27, 12, 30, 5)
    assert render.event(timeless, now=naive)["time"] == "2026-11-27T12:30:05Z"
    assert "time" not in render.event(timeless)


def test_source_without_cluster_and_with_odd_cluster_names() -> None:
    plain = dataclasses.replace(sample("success"), cluster="")
    assert render.source(plain) == "/deploybell/cluster/namespaces/team-a/deployjobs/web"
    odd = dataclasses.replace(sample("success"), cluster="eu west/1?x#y")
    assert render.source(odd) == (
        "/deploybell/eu%20west%2F1%3Fx%23y/namespaces/team-a/deployjobs/web"
    )


def test_id_without_an_idempotency_key_is_still_unique_per_event() -> None:
    message = dataclasses.replace(sample("cancel"), idempotency_key="")
    assert render.event(message)["id"] == "team-a/web/3/cancel"


def test_template_overrides_title_and_summary_only() -> None:
    message = sample("success")
    data = render.event(message, Title(title="Shipped!", text="web is live"))["data"]
    assert data["title"] == "Shipped!"
    assert data["summary"] == "web is live"
    assert data["message"] == message.message
    assert render.event(message, Title(title="Only title"))["data"]["summary"] == (
        message.summary()
    )


def test_serialized_body_is_utf8_json_not_ascii_escaped() -> None:
    body = render.serialize(sample("failure"), now=NOW)
    assert "✖".encode() in body
    assert json.loads(body) == roundtrip(render.event(sample("failure"), now=NOW))


def test_lone_surrogates_still_give_valid_json() -> None:
    message = dataclasses.replace(sample("failure"), message="bad \udc80 byte")
    parsed = json.loads(render.serialize(message))
    assert parsed["data"]["message"] == "bad \udc80 byte"


def test_signature_matches_rfc_4231_test_case_2() -> None:
    assert render.signature(b"what do ya want for nothing?", "Jefe") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_signature_depends_on_every_byte_and_the_key() -> None:
    body = render.serialize(sample("success"))
    assert render.signature(body, "k") != render.signature(body + b" ", "k")
    assert render.signature(body, "k") != render.signature(body, "K")


# Any text at all, lone surrogates included: what a manifest or a pod message could carry.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=200)


@settings(deadline=None, max_examples=200)
@given(
    message_text=any_text,
    reason=any_text,
    job=any_text,
    title=st.none() | any_text,
    text=st.none() | any_text,
    extra=st.dictionaries(any_text, any_text, max_size=3),
)
def test_body_always_parses_and_round_trips(
    message_text: str,
    reason: str,
    job: str,
    title: str | None,
    text: str | None,
    extra: dict[str, str],
) -> None:
    message: Message = dataclasses.replace(
        sample("failure"), message=message_text, reason=reason, job=job, extra=extra
    )
    parsed = json.loads(render.serialize(message, Title(title=title, text=text), now=NOW))
    data = parsed["data"]
    assert data["message"] == message_text
    assert data["reason"] == reason
    assert data["job"] == job
    assert data["extra"] == extra
    # An empty template field counts as unset, like a failing one: the default shows.
    assert data["title"] == (title or message.title())
    assert data["summary"] == (text or message.summary())
    assert parsed["subject"] == f"team-a/{job}"
