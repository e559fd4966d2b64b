"""The chat text shared by Rocket.Chat, Webex, Zulip (Markdown) and Matrix (HTML and plain):
values format nothing and mention nobody, links stay links, and a text over its limit loses
whole lines to a `…` line."""

from __future__ import annotations

import dataclasses

import pytest

from deploybell.notify.model import PodDiagnosis, sample
from deploybell.notify.providers import _chat_text
from deploybell.notify.providers._chat_text import Span


@pytest.mark.parametrize(
    ("value", "markdown"),
    [
        ("*bold* _it_ ~x~ `code`", r"\*bold\* \_it\_ \~x\~ \`code\`"),
        ("[click](https://evil.example)", r"\[click\](https://evil.example)"),
        ("ping @all @here @room @alice", "ping @\u2060all @\u2060here @\u2060room @\u2060alice"),
        ("<@personEmail:a@b.c> # heading", r"\<@\u2060personEmail:a@\u2060b.c\> \# heading"),
        ("a@ b @ c", "a@ b @ c"),
    ],
)
def test_a_value_is_literal_markdown(value: str, markdown: str) -> None:
    assert _chat_text.md(value) == markdown.replace(r"\u2060", "\u2060")


def test_html_escapes_values_and_links() -> None:
    line = (Span("<script>&", "b"), Span(" x"), Span("open", "a", 'https://e.x/?a="b"&c'))
    assert _chat_text.html([line]) == (
        '<b>&lt;script&gt;&amp;</b> x<a href="https://e.x/?a=&quot;b&quot;&amp;c">open</a>'
    )
    assert _chat_text.plain([line]) == '<script>& xopen: https://e.x/?a="b"&c'


def test_a_link_with_parentheses_stays_one_markdown_link() -> None:
    line = (Span("docs", "a", "https://wiki.example/Deploy_(prod)"),)
    assert _chat_text.markdown([line]) == "[docs](https://wiki.example/Deploy_%28prod%29)"


def test_control_characters_and_line_breaks_do_not_reach_the_text() -> None:
    message = dataclasses.replace(sample("failure"), images=("a:1", "b:2"), reason="Err\x1b[31m")
    text = _chat_text.markdown(_chat_text.lines(message, None, _chat_text.LEVELS[0]))
    assert "\x1b" not in text
    assert "**Images:** a:1, b:2" in text


@pytest.mark.parametrize("limit", [250, 400, 600])
def test_past_the_last_level_whole_lines_give_way_to_a_marker(limit: int) -> None:
    pods = tuple(PodDiagnosis(f"pod-{i}", "app", "Error", "x" * 500) for i in range(40))
    huge = dataclasses.replace(sample("failure"), message="y" * 20_000, pods=pods)
    full = _chat_text.markdown(_chat_text.lines(huge, None, _chat_text.LEVELS[-1]))
    assert len(full) > limit, "the least of the levels does not fit: lines must go"
    text = _chat_text.fitted(huge, None, _chat_text.markdown, lambda t: len(t) <= limit)
    assert len(text) <= limit
    assert text.startswith("**✖ team-a/web failed on prod-eu (run 3)**")
    kept = text.split("\n")
    assert kept[-1] == "…"
    assert all(line in full.split("\n") for line in kept[:-1]), "lines are dropped, never cut"


@pytest.mark.parametrize(
    ("limit", "last_pod_shown"),
    [(10_000, "pod-19"), (1_479, "pod-19"), (1_478, "pod-9"), (1_000, "pod-4"), (700, None)],
)
def test_the_fullest_level_that_fits_is_chosen(limit: int, last_pod_shown: str | None) -> None:
    pods = tuple(PodDiagnosis(f"pod-{i}", "app", "Error", "z") for i in range(25))
    failure = dataclasses.replace(sample("failure"), pods=pods)
    text = _chat_text.fitted(failure, None, _chat_text.markdown, lambda t: len(t) <= limit)
    shown = [line.split()[2] for line in text.split("\n") if line.startswith("• pod pod-")]
    assert (shown[-1] if shown else None) == last_pod_shown
    assert len(text) <= limit
