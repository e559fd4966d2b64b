"""HipChat bodies: coloured HTML room notifications, plain-text private messages, escaping."""

from __future__ import annotations

import dataclasses

import pytest

from deploybell.notify.model import PodDiagnosis, WarningEvent, sample
from deploybell.notify.providers import hipchat as render
from deploybell.notify.providers.base import Title


@pytest.mark.parametrize(
    ("event", "colour"),
    [("start", "yellow"), ("success", "green"), ("failure", "red"), ("cancel", "gray")],
)
def test_colour_per_event(event: str, colour: str) -> None:
    body = render.body_for("room", sample(event))
    assert body["color"] == colour
    assert body["message_format"] == "html"
    assert body["notify"] is False


def test_unknown_event_is_gray() -> None:
    assert render.colour(dataclasses.replace(sample("success"), event="other")) == "gray"


def test_room_notification_on_failure() -> None:
    body = render.body_for("room", sample("failure"), notify=True)
    assert body["notify"] is True
    assert body["message"] == (
        "<b>✖ team-a/web failed on prod-eu (run 3)</b>"
        "<br>CrashLoopBackOff after 1m05s: pod web-7d9f8-x2kqp container app is in "
        "CrashLoopBackOff (exit code 1, 5 restarts)"
        '<br><a href="https://dashboard.example/team-a/web">team-a/web</a>'
        "<br><b>Failing pods</b><ul><li>pod web-7d9f8-x2kqp container app: "
        "CrashLoopBackOff, exit code 1, 5 restarts — back-off 40s restarting failed container"
        "</li></ul>"
        "<b>Warning events</b><ul><li>Pod web-7d9f8-x2kqp BackOff (7 times): "
        "Back-off restarting failed container app</li></ul>"
    )


def test_success_has_no_diagnosis_and_start_lists_images() -> None:
    success = render.html(sample("success"))
    assert success.startswith("<b>✔ team-a/web succeeded on prod-eu (run 3)</b>")
    assert "RolloutComplete after 1m05s: all 2 objects rolled out" in success
    assert "Failing pods" not in success
    assert "Warning events" not in success
    assert "deploying registry.example/web:1.4.3" in render.html(sample("start"))


def test_private_message_is_plain_text() -> None:
    body = render.body_for("user", sample("failure"))
    assert body == {
        "message": "\n".join(
            [
                "✖ team-a/web failed on prod-eu (run 3)",
                "CrashLoopBackOff after 1m05s: pod web-7d9f8-x2kqp container app is in "
                "CrashLoopBackOff (exit code 1, 5 restarts)",
                "https://dashboard.example/team-a/web",
                "Failing pods:",
                "- pod web-7d9f8-x2kqp container app: CrashLoopBackOff, exit code 1, 5 restarts — "
                "back-off 40s restarting failed container",
                "Warning events:",
                "- Pod web-7d9f8-x2kqp BackOff (7 times): Back-off restarting failed container app",
            ]
        ),
        "message_format": "text",
        "notify": False,
    }


def test_every_value_is_escaped() -> None:
    evil = "<script>alert('x')</script>&"
    message = dataclasses.replace(
        sample("failure"),
        job=evil,
        message=evil,
        pods=(PodDiagnosis(evil, evil, evil, evil, 1, 2),),
        warnings=(WarningEvent(evil, evil, evil),),
    )
    html = render.html(message)
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in html
    # The text variant is shown verbatim by HipChat, so it keeps the characters.
    assert evil in render.text(message)


def test_link_is_an_anchor_only_for_web_urls() -> None:
    quoted = dataclasses.replace(sample("success"), link='https://d.example/?a=1&b="x"')
    assert '<a href="https://d.example/?a=1&amp;b=&quot;x&quot;">' in render.html(quoted)
    script = dataclasses.replace(sample("success"), link="javascript:alert(1)")
    assert "<a" not in render.html(script)
    assert "javascript" not in render.html(script)
    assert "<a" not in render.html(dataclasses.replace(sample("success"), link=""))


def test_template_replaces_title_and_summary_but_keeps_the_diagnosis() -> None:
    override = Title(title="<i>Deploy</i> broke", text="line one\nline two")
    html = render.html(sample("failure"), override)
    assert html.startswith("<b>&lt;i&gt;Deploy&lt;/i&gt; broke</b><br>line one<br>line two")
    assert "Failing pods" in html
    assert render.text(sample("failure"), override).startswith(
        "<i>Deploy</i> broke\nline one\nline two\n"
    )


def test_a_huge_diagnosis_stays_under_hipchat_s_limit() -> None:
    long = "x" * 5000
    message = dataclasses.replace(
        sample("failure"),
        message=long,
        pods=tuple(PodDiagnosis(f"pod-{i}", long, long, long, 1, 9) for i in range(50)),
        warnings=tuple(WarningEvent(long, long, long) for _ in range(50)),
    )
    assert len(render.html(message)) < 10_000
    assert len(render.text(message)) < 10_000
    assert "pod-4" in render.html(message)
    assert "pod-5" not in render.html(message)
    assert "<li>… 45 more</li>" in render.html(message)
    assert "\n- … 45 more\n" in render.text(message)


def test_escaping_cannot_push_a_message_over_the_limit() -> None:
    quotes = '"' * 5000  # each becomes &quot;, six times longer
    message = dataclasses.replace(
        sample("failure"),
        message=quotes,
        pods=tuple(PodDiagnosis(quotes, quotes, quotes, quotes, 1, 9) for _ in range(9)),
        warnings=tuple(WarningEvent(quotes, quotes, quotes) for _ in range(9)),
        link="https://d.example/" + "a" * 3000,
    )
    html = render.html(message)
    assert len(html) <= 10_000
    assert "more</li>" in html
    assert "<a " not in html  # a link too long to be real is left out
