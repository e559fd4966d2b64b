"""IRC rendering: the one line, injection safety, the 512-byte splitter and recipient parsing."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploybell.notify.model import PodDiagnosis, WarningEvent, sample
from deploybell.notify.providers._irc_lines import (
    MAX_LINE_BYTES,
    clean,
    line_budget,
    lines,
    render,
    split,
)
from deploybell.notify.providers.base import Title
from deploybell.notify.providers.irc import IrcTarget, parse_recipient

# The formatting render() adds itself: a colour code before the symbol and a reset after it.
OWN_FORMATTING = re.compile(r"\x03\d\d(?=[▶✔✖■])|\x0f")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def without_own_formatting(line: str) -> str:
    return OWN_FORMATTING.sub("", line)


# the default line


def test_success_line_has_title_summary_and_link() -> None:
    line = render(sample("success"))
    assert without_own_formatting(line) == (
        "✔ team-a/web succeeded on prod-eu (run 3): RolloutComplete after 1m05s: "
        "all 2 objects rolled out | https://dashboard.example/team-a/web"
    )


def test_symbol_is_coloured_by_event() -> None:
    assert render(sample("success")).startswith("\x0303✔\x0f ")
    assert render(sample("failure")).startswith("\x0304✖\x0f ")
    assert render(sample("cancel")).startswith("\x0314■\x0f ")
    assert render(sample("start")).startswith("\x0312▶\x0f ")


def test_start_line_names_the_images() -> None:
    line = without_own_formatting(render(sample("start")))
    assert line.startswith("▶ team-a/web started on prod-eu (run 3): deploying ")
    assert "registry.example/web:1.4.3" in line


def test_failure_line_condenses_the_first_failing_pod_and_warning() -> None:
    line = render(sample("failure"))
    parts = without_own_formatting(line).split(" | ")
    assert parts[0].startswith("✖ team-a/web failed on prod-eu (run 3): CrashLoopBackOff after")
    assert parts[1] == "https://dashboard.example/team-a/web"
    assert parts[2] == (
        "pod web-7d9f8-x2kqp/app: CrashLoopBackOff, exit 1, 5 restarts "
        "(back-off 40s restarting failed container)"
    )
    assert parts[3] == (
        "Warning BackOff on Pod web-7d9f8-x2kqp (7x): Back-off restarting failed container app"
    )


def test_more_failing_pods_are_counted_not_listed() -> None:
    base = sample("failure")
    pods = (*base.pods, PodDiagnosis("web-2", "app", "OOMKilled", exit_code=137))
    pods += (PodDiagnosis("web-3", "app", "Error"),)
    line = render(dataclasses.replace(base, pods=pods))
    assert "+2 more" in line
    assert "web-2" not in line
    assert "OOMKilled" not in line


def test_long_pod_message_is_clipped() -> None:
    base = sample("failure")
    pod = dataclasses.replace(base.pods[0], message="x" * 1000)
    line = render(dataclasses.replace(base, pods=(pod,)))
    assert "x" * 159 + "…" in line
    assert "x" * 160 not in line


def test_pod_without_exit_code_or_restarts() -> None:
    base = sample("failure")
    pod = PodDiagnosis("web-1", "app", "ImagePullBackOff", 'manifest for "web:9" not found')
    line = render(dataclasses.replace(base, pods=(pod,), warnings=()))
    assert line.endswith('| pod web-1/app: ImagePullBackOff (manifest for "web:9" not found)')


def test_no_link_no_cluster() -> None:
    message = dataclasses.replace(sample("success"), link="", cluster="")
    assert without_own_formatting(render(message)) == (
        "✔ team-a/web succeeded (run 3): RolloutComplete after 1m05s: all 2 objects rolled out"
    )


def test_test_message_says_so_and_keeps_colour() -> None:
    line = render(dataclasses.replace(sample("success"), test=True))
    assert line.startswith("[test] \x0303✔\x0f team-a/web succeeded")


def test_template_title_and_text_replace_the_defaults() -> None:
    line = render(sample("failure"), Title(title="web is down", text="see the runbook"))
    assert line.startswith("web is down: see the runbook | https://dashboard.example/team-a/web")
    assert "\x03" not in line  # a template's title is not coloured
    assert "pod web-7d9f8-x2kqp/app" in line  # the diagnosis stays


def test_template_values_are_cleaned_too() -> None:
    line = render(sample("success"), Title(title="\x02bold\x02\r\nQUIT", text="a\x03" + "4red"))
    assert line.startswith("bold QUIT: a4red |")


def test_blank_template_title_falls_back_to_the_default() -> None:
    line = render(sample("success"), Title(title=" \n ", text=None))
    assert line.startswith("\x0303✔\x0f team-a/web succeeded")


# injection safety


INJECTIONS = [
    "\r\nQUIT :x",
    "\nPRIVMSG #other :pwned",
    "\rJOIN #evil",
    "a\x00b",
    "\x02bold\x1funder\x1ditalic\x16rev\x0304,05colour\x0f\x11mono\x1estrike\x04ff0000hex",
    "\x7fdel\x85nel\u2028ls\u2029ps",
    "\u202eevil\u2066",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_manifest_values_cannot_inject(value: str) -> None:
    message = dataclasses.replace(
        sample("failure"),
        job=f"web{value}",
        namespace=f"team{value}",
        reason=value,
        message=value,
        cluster=value,
        link=f"https://x.example/{value}",
        images=(value,),
        pods=(PodDiagnosis(value, value, value, value, 1, 2),),
        warnings=(WarningEvent(value, value, value, 3),),
    )
    for event in ("start", "failure"):
        line = render(dataclasses.replace(message, event=event), Title(text=value))
        line += render(dataclasses.replace(message, event=event))
        assert not CONTROL.search(without_own_formatting(line)), repr(line)
        assert not set(line) & set("\u2028\u2029\u202e\u2066")


def test_clean_keeps_words_apart() -> None:
    assert clean("one\r\ntwo\tthree\x00four\x03five") == "one two threefourfive"
    assert clean("  \n padded \n ") == "padded"
    assert clean("ok ✔ 日本 👩‍💻") == "ok ✔ 日本 👩‍💻"


# splitting under the byte limit


def test_budget_leaves_room_for_the_server_prefix() -> None:
    budget = line_budget("NOTICE", "#deploys", "deploybell")
    text = "x" * budget
    relayed = f":deploybell!~{'u' * 20}@{'h' * 63} NOTICE #deploys :{text}\r\n"
    assert len(relayed.encode()) <= MAX_LINE_BYTES
    assert 350 <= budget <= 400


def test_split_prefers_part_separators_then_spaces() -> None:
    assert split("aaaa bbbb | cccc dddd", 16) == ["aaaa bbbb", "cccc dddd"]
    assert split("aaaa bbbb cccc", 10) == ["aaaa bbbb", "cccc"]
    assert split("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    assert split("short", 100) == ["short"]
    assert split("   ", 100) == []


def test_split_never_cuts_a_character() -> None:
    assert split("üüüüü", 5) == ["üü", "üü", "ü"]
    assert split("👩👩👩", 6) == ["👩", "👩", "👩"]


def test_split_rejects_a_budget_without_room() -> None:
    with pytest.raises(ValueError, match="budget"):
        split("abc", 3)


def test_long_failure_message_becomes_several_lines_under_the_limit() -> None:
    message = dataclasses.replace(sample("failure"), message="ünïcødé wörds " * 120)
    texts = lines(message, None, command="NOTICE", target="#deploys", nick="deploybell")
    assert len(texts) >= 4
    for text in texts:
        assert len(f":deploybell!{'x' * 85} NOTICE #deploys :{text}\r\n".encode()) <= 512
    assert squash(" ".join(texts)) == squash(render(message))


def squash(text: str) -> str:
    """The text without the spaces and separators a cut may drop."""
    return re.sub(r"[ |]", "", text)


@settings(max_examples=300, deadline=None)
@given(
    # Every code point, lone surrogates included (JSON may carry them).
    text=st.text(st.characters(blacklist_categories=()), min_size=0, max_size=3000),
    nick=st.from_regex(r"[a-z][a-z0-9_]{0,29}", fullmatch=True),
    channel=st.from_regex(r"#[a-z0-9-]{1,49}", fullmatch=True),
    command=st.sampled_from(["NOTICE", "PRIVMSG"]),
)
def test_split_lines_are_clean_and_fit_for_any_text(
    text: str, nick: str, channel: str, command: str
) -> None:
    message = dataclasses.replace(sample("failure"), message=text, job=text[:50])
    texts = lines(message, Title(text=text), command=command, target=channel, nick=nick)
    assert texts
    for piece in texts:
        assert not CONTROL.search(without_own_formatting(piece)), repr(piece)
        wire = f":{nick}!~{'u' * 20}@{'h' * 63} {command} {channel} :{piece}\r\n"
        assert len(wire.encode()) <= MAX_LINE_BYTES
    assert squash("".join(texts)) == squash(render(message, Title(text=text)))


@settings(max_examples=300, deadline=None)
@given(text=st.text(min_size=0, max_size=2000), budget=st.integers(min_value=4, max_value=600))
def test_split_keeps_every_character_in_order(text: str, budget: int) -> None:
    pieces = split(text, budget)
    assert all(0 < len(p.encode()) <= budget for p in pieces)
    assert squash("".join(pieces)) == squash(text)


# recipients


@pytest.mark.parametrize(
    ("recipient", "tls", "expected"),
    [
        ("irc.libera.chat#ops", None, IrcTarget("irc.libera.chat", 6667, "#ops", False)),
        ("irc.libera.chat:6697#ops", None, IrcTarget("irc.libera.chat", 6697, "#ops", True)),
        ("irc.libera.chat:7000#ops", True, IrcTarget("irc.libera.chat", 7000, "#ops", True)),
        ("irc.libera.chat#ops", True, IrcTarget("irc.libera.chat", 6697, "#ops", True)),
        ("irc.example:6697#ops", False, IrcTarget("irc.example", 6697, "#ops", False)),
        ("127.0.0.1:16667#deploy-s", None, IrcTarget("127.0.0.1", 16667, "#deploy-s", False)),
        ("[::1]:6667#ops", None, IrcTarget("::1", 6667, "#ops", False)),
        ("irc.example##double", None, IrcTarget("irc.example", 6667, "##double", False)),
    ],
)
def test_parse_recipient(recipient: str, tls: bool | None, expected: IrcTarget) -> None:
    assert parse_recipient(recipient, tls) == expected


@pytest.mark.parametrize(
    ("recipient", "problem"),
    [
        ("irc.example", "host\\[:port\\]#channel"),
        ("irc.example#", "host\\[:port\\]#channel"),
        ("#ops", "host name"),
        ("irc example#ops", "host name"),
        ("irc.example:0#ops", "port"),
        ("irc.example:70000#ops", "port"),
        ("irc.example:66x#ops", "port"),
        ("irc.example:#ops", "port"),
        ("irc.example#ops,#other", "commas"),
        ("irc.example#ops room", "spaces"),
        ("irc.example#ops\r\nQUIT", "control"),
        ("irc.example#" + "x" * 60, "at most 50"),
    ],
)
def test_parse_recipient_rejects(recipient: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_recipient(recipient)
