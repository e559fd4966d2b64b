"""Slack rendering: Block Kit content, colours, diagnosis, links and mention safety."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from deploybell.notify.model import Message, PodDiagnosis, WarningEvent, sample
from deploybell.notify.providers._slack_blocks import SECTION_LIMIT, escape, render, thread_reply
from deploybell.notify.providers.base import Title


def texts(payload: dict[str, Any]) -> str:
    """Every mrkdwn/plain text of the message, one per line."""
    found: list[str] = [payload["text"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload["blocks"])
    walk(payload["attachments"])
    return "\n".join(found)


def blocks_of_type(payload: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    every = payload["blocks"] + [b for a in payload["attachments"] for b in a["blocks"]]
    return [b for b in every if b["type"] == type_]


@pytest.mark.parametrize(
    ("event", "colour"),
    [("start", "#2f80ed"), ("success", "#2eb67d"), ("failure", "#e01e5a"), ("cancel", "#9e9e9e")],
)
def test_attachment_colour_follows_the_event(event: str, colour: str) -> None:
    payload = render(sample(event)).as_payload()
    assert [a["color"] for a in payload["attachments"]] == [colour]


def test_success_has_title_fallback_summary_facts_and_a_link_button() -> None:
    payload = render(sample("success")).as_payload()
    assert payload["text"] == "✔ team-a/web succeeded on prod-eu (run 3)"
    assert payload["attachments"][0]["fallback"] == payload["text"]
    headline = payload["blocks"][0]["text"]["text"]
    assert headline == (
        "*✔ team-a/web succeeded on prod-eu (run 3)*\n"
        "RolloutComplete after 1m05s: all 2 objects rolled out"
    )
    fields = [f["text"] for f in blocks_of_type(payload, "section")[1]["fields"]]
    assert "*Job*\nteam-a/web" in fields
    assert "*Run*\n3" in fields
    assert "*Cluster*\nprod-eu" in fields
    assert "*Duration*\n1m05s" in fields
    assert "*Images*\nregistry.example/web:1.4.3" in fields
    [actions] = blocks_of_type(payload, "actions")
    assert actions["elements"][0]["url"] == "https://dashboard.example/team-a/web"
    assert "Failing pods" not in texts(payload)
    json.dumps(payload)  # a JSON body built from data, ready for the Web API


def test_start_names_the_images_being_deployed() -> None:
    payload = render(sample("start")).as_payload()
    assert payload["text"] == "▶ team-a/web started on prod-eu (run 3)"
    assert "deploying registry.example/web:1.4.3" in payload["blocks"][0]["text"]["text"]


def test_failure_carries_the_diagnosis() -> None:
    all_text = texts(render(sample("failure")).as_payload())
    assert "*Failing pods*" in all_text
    assert (
        "• pod web-7d9f8-x2kqp container app: CrashLoopBackOff, exit code 1, 5 restarts"
        " — back-off 40s restarting failed container"
    ) in all_text
    assert "*Recent warnings*" in all_text
    assert "• Pod web-7d9f8-x2kqp BackOff (7 times): Back-off restarting failed container app" in (
        all_text
    )
    assert "• Deployment team-a/web: Failed" in all_text


def test_manifest_values_cannot_mention_anyone() -> None:
    hostile = dataclasses.replace(
        sample("failure"),
        message="<!channel> look & see <@U0ALICE> <https://evil.example|click>",
        pods=(PodDiagnosis("web-1", "app", "<!here>", "<!everyone>", 1, 1),),
        warnings=(WarningEvent("Pod web-1", "BackOff", "<!subteam^S1> ping", 2),),
    )
    override = Title(title="<!channel> deployed", text="by <@U0BOB>")
    for payload in (render(hostile).as_payload(), render(hostile, override).as_payload()):
        body = texts(payload)
        assert "<" not in body, body
        assert ">" not in body, body
    default = texts(render(hostile).as_payload())
    assert "&lt;!channel&gt; look &amp; see &lt;@U0ALICE&gt;" in default
    assert "&lt;!here&gt;, exit code 1" in default
    reply = thread_reply(hostile, override)
    assert "<" not in reply
    assert reply.startswith("*&lt;!channel&gt; deployed*\nby &lt;@U0BOB&gt;")


def test_template_title_and_text_replace_the_defaults() -> None:
    payload = render(sample("success"), Title(title="web is live", text="go look")).as_payload()
    assert payload["text"] == "web is live"
    assert payload["blocks"][0]["text"]["text"] == "*web is live*\ngo look"
    # The facts and diagnosis stay: a template replaces the words, not the evidence.
    assert "*Job*\nteam-a/web" in texts(payload)


@pytest.mark.parametrize("link", ["javascript:alert(1)", "dashboard.example/x"])
def test_a_link_slack_would_reject_as_a_button_is_shown_as_text(link: str) -> None:
    payload = render(dataclasses.replace(sample("success"), link=link)).as_payload()
    assert blocks_of_type(payload, "actions") == []
    assert f"*Link*\n{link}" in texts(payload)


def test_no_link_no_button() -> None:
    payload = render(dataclasses.replace(sample("success"), link="")).as_payload()
    assert blocks_of_type(payload, "actions") == []
    assert "*Link*" not in texts(payload)


def test_long_content_stays_within_slack_limits_without_half_entities() -> None:
    pods = tuple(PodDiagnosis(f"web-{i}", "app", "Error", "&" * 400, 1, 3) for i in range(8))
    payload = render(dataclasses.replace(sample("failure"), pods=pods, message="<" * 5000))
    sections = [
        block["text"]["text"]
        for block in payload.blocks + payload.attachments[0]["blocks"]
        if block["type"] == "section" and "text" in block
    ]
    clipped = [text for text in sections if text.endswith("…")]
    assert len(clipped) == 2, sections  # the headline and the failing pods
    for text in sections:
        assert len(text) <= SECTION_LIMIT
        assert re.search(r"&[a-z]{0,3}…$", text) is None, text[-20:]


def test_many_pods_are_capped_with_a_count() -> None:
    pods = tuple(PodDiagnosis(f"web-{i}", "app", "Error", "", 1, 3) for i in range(13))
    body = texts(render(dataclasses.replace(sample("failure"), pods=pods)).as_payload())
    assert "web-9 container" in body
    assert "web-10 container" not in body
    assert "…and 3 more" in body


def test_thread_reply_for_a_failure_names_the_first_failing_pod() -> None:
    reply = thread_reply(sample("failure"))
    assert reply.splitlines() == [
        "*✖ team-a/web failed on prod-eu (run 3)*",
        "CrashLoopBackOff after 1m05s: pod web-7d9f8-x2kqp container app is in"
        " CrashLoopBackOff (exit code 1, 5 restarts)",
        "• pod web-7d9f8-x2kqp container app: CrashLoopBackOff, exit code 1, 5 restarts"
        " — back-off 40s restarting failed container",
        "https://dashboard.example/team-a/web",
    ]


def test_thread_reply_for_a_cancel_is_short() -> None:
    reply = thread_reply(dataclasses.replace(sample("cancel"), link=""))
    assert reply == "*■ team-a/web was canceled on prod-eu (run 3)*\nCanceled after 1m05s"


def test_test_messages_say_so() -> None:
    payload = render(dataclasses.replace(sample("start"), test=True)).as_payload()
    assert payload["text"].startswith("[test] ")
    assert "test message" in texts(payload)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a & b", "a &amp; b"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("&lt;", "&amp;lt;"),
        ("plain @channel", "plain @channel"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def test_a_message_without_optional_parts_renders() -> None:
    bare = Message(
        job="api",
        namespace="ns",
        run=1,
        event="success",
        phase="Succeeded",
        reason="RolloutComplete",
        message="",
    )
    payload = render(bare).as_payload()
    assert payload["text"] == "✔ ns/api succeeded (run 1)"
    assert blocks_of_type(payload, "actions") == []
    assert "*Cluster*" not in texts(payload)
