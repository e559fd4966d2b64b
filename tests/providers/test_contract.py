"""The contract every registered provider type keeps, run against its peer.

- every event reaches the destination; a type that edits in place turns the start message into
  the outcome, also when the outcome is sent by a new provider instance (an operator restart: the
  start message's references come from the ledger, as `Destination.previous`);
- an alerting type (its contract says `alerting`: the destination pages on problems) shows a
  failure as one open alert that a cancel leaves open and the job's next success resolves, and
  shows nothing for runs that did not fail, across restarts between start and outcome;
- a rate-limit answer becomes a retryable error that waits as long as the vendor asked;
- whatever the message holds, the rendered body stays within the vendor's documented limits
  (long values are cut with a marker, never refused);
- a message sent by a fresh process (the operator restarted, the spec changed since the run)
  renders as the uninterrupted one does;
- a list of failing pods says how many it leaves out, also those the run's status did not keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploybell.api.notification import NotificationSpec
from deploybell.deploy import report
from deploybell.deploy.health_pods import PodProblem
from deploybell.deploy.report import RunFacts
from deploybell.deploy.run import Phase, RunState
from deploybell.notify import providers
from deploybell.notify.model import Message, PodDiagnosis, WarningEvent, sample
from deploybell.notify.providers.base import (
    Destination,
    Preview,
    Provider,
    SmtpDefaults,
    TemporaryDeliveryError,
)
from tests.support import restart
from tests.support.peers import CONTRACTS, Contract

OUTCOMES = ("success", "failure", "cancel")
EXAMPLES = 2000 if os.environ.get("RELIABILITY_LONG") else 60
# How each event's title reads ("team-a/web succeeded on prod-eu (run 2)"), symbol aside.
VERBS = {
    e: f"team-a/web {v} on prod-eu"
    for e, v in {
        "start": "started",
        "success": "succeeded",
        "failure": "failed",
        "cancel": "was canceled",
    }.items()
}


@pytest.fixture(params=providers.NAMES)
def contract(request: pytest.FixtureRequest) -> Iterator[tuple[str, Contract]]:
    with CONTRACTS[request.param]() as running:
        yield request.param, running


def message(event: str, run: int) -> Message:
    return dataclasses.replace(sample(event), run=run, idempotency_key=f"{run}/{event}/contract")


def destination(peer: Contract, type_: str, recipient: str, previous: Any = None) -> Destination:
    spec = providers.parse(
        {
            "type": type_,
            "recipients": list(peer.recipients()),
            "secretRef": {"name": "contract"},
            type_: peer.options(),
        }
    )
    return Destination(
        type=type_,
        recipient=recipient,
        options=spec.options,
        secret=peer.secret(),
        smtp=SmtpDefaults(sender="bell@local.test"),
        previous=previous or {},
    )


async def send(
    provider: Provider, peer: Contract, type_: str, event: str, run: int, previous: Any = None
) -> dict[str, str]:
    recipient = (peer.recipients() or ("",))[0]
    msg = message(event, run)
    if commit_of := getattr(peer, "commit_of", None):
        # A destination that keeps one record per DeployJob and commit (a commit status) shows
        # a later run of the same DeployJob in place of an earlier one: each run gets its own
        # commit there, so that every run stays visible.
        msg = dataclasses.replace(msg, commit=commit_of(run))
    sent = await provider.send(msg, destination(peer, type_, recipient, previous))
    return dict(sent.refs)


def of_run(texts: list[str], run: int) -> list[str]:
    return [t for t in texts if f"(run {run})" in t]


async def test_every_event_arrives_and_in_place_edits_survive_a_restart(
    contract: tuple[str, Contract],
) -> None:
    type_, peer = contract
    if getattr(peer, "alerting", False):
        await alert_lifecycle(type_, peer)
        return
    rules = providers.TYPES[type_].rules
    for run, outcome in enumerate(OUTCOMES, start=1):
        before = providers.TYPES[type_].sender()
        refs = await send(before, peer, type_, "start", run)
        await before.close()
        after = providers.TYPES[type_].sender()  # a restarted operator: refs from the ledger
        await send(after, peer, type_, outcome, run, previous=refs)
        await after.close()

    seen = await wait_for_visible(
        peer,
        lambda texts: all(
            any(VERBS[o] in t for t in of_run(texts, run)) for run, o in enumerate(OUTCOMES, 1)
        ),
    )
    for run, outcome in enumerate(OUTCOMES, start=1):
        shown = of_run(seen, run)
        assert any(VERBS[outcome] in t for t in shown), (outcome, shown)
        still_started = [t for t in shown if VERBS["start"] in t]
        if rules.edits_in_place:
            assert still_started == [], f"the start message of run {run} was not edited: {shown}"
        else:
            assert still_started, f"the start message of run {run} is missing: {shown}"


async def run_restarted(peer: Contract, type_: str, run: int, outcome: str) -> None:
    """A run's start, then its outcome from a new sender (a restarted operator)."""
    before = providers.TYPES[type_].sender()
    refs = await send(before, peer, type_, "start", run)
    await before.close()
    after = providers.TYPES[type_].sender()
    await send(after, peer, type_, outcome, run, previous=refs)
    await after.close()


async def alert_lifecycle(type_: str, peer: Contract) -> None:
    """success (nothing open), failure (one alert), cancel (still open), success (resolved)."""
    await run_restarted(peer, type_, 1, "success")
    assert await wait_for_visible(peer, lambda texts: False, within=0.5) == []
    await run_restarted(peer, type_, 2, "failure")
    shown = await wait_for_visible(peer, lambda texts: len(texts) == 1)
    assert len(shown) == 1, shown
    assert VERBS["failure"] in shown[0], shown
    assert "(run 2)" in shown[0], shown
    await run_restarted(peer, type_, 3, "cancel")
    assert await wait_for_visible(peer, lambda texts: False, within=0.5) == shown
    await run_restarted(peer, type_, 4, "success")
    assert await wait_for_visible(peer, lambda texts: texts == []) == []


async def wait_for_visible(peer: Contract, done: Any, within: float = 30.0) -> list[str]:
    """What the destination shows once `done` holds (IRC and mail arrive a little later)."""
    deadline = time.monotonic() + within
    while True:
        texts = peer.visible()
        if done(texts) or time.monotonic() > deadline:
            return texts
        await asyncio.sleep(0.05)


RATE_LIMITED = [t for t in providers.NAMES if getattr(CONTRACTS[t], "rate_limits", False)]


@pytest.mark.parametrize("type_", RATE_LIMITED)
async def test_a_rate_limit_is_retried_after_the_time_the_vendor_asked(type_: str) -> None:
    with CONTRACTS[type_]() as peer:
        peer.rate_limit_next(7)
        provider = providers.TYPES[type_].sender()
        try:
            with pytest.raises(TemporaryDeliveryError) as caught:
                # An outcome: every type sends one (a record type may send nothing at start).
                await send(provider, peer, type_, "success", 1)
        finally:
            await provider.close()
    assert caught.value.retry_after is not None
    assert 6 <= caught.value.retry_after <= 7.5, caught.value.message


def preview(
    type_: str, peer_recipients: tuple[str, ...], options: dict[str, Any], msg: Message
) -> Any:
    spec = NotificationSpec(
        type=type_,
        recipients=peer_recipients,
        secret_name="contract",
        options=providers.parse(
            {
                "type": type_,
                "recipients": list(peer_recipients),
                "secretRef": {"name": "x"},
                type_: options,
            }
        ).options,
        template={},
    )
    recipient = (peer_recipients or ("",))[0]
    return providers.TYPES[type_].render(Preview(spec, recipient, msg, None, "bell@local.test"))


@contextlib.contextmanager
def offline(type_: str) -> Iterator[Contract]:
    """The type's contract peer, not started: its recipients, options and limits."""
    peer = CONTRACTS[type_]()
    try:
        yield peer
    finally:
        peer.__exit__(None, None, None)


_LONG = st.text(min_size=0, max_size=40).map(lambda s: s * 200)
_SHORT = st.text(min_size=1, max_size=60)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    event = draw(st.sampled_from(("start", *OUTCOMES)))
    pods = tuple(
        PodDiagnosis(draw(_SHORT), draw(_SHORT), draw(_SHORT), draw(_LONG), 1, 3)
        for _ in range(draw(st.integers(0, 30)))
    )
    warnings = tuple(
        WarningEvent(draw(_SHORT), draw(_SHORT), draw(_LONG), 2)
        for _ in range(draw(st.integers(0, 30)))
    )
    return dataclasses.replace(
        sample(event),
        job=draw(_SHORT),
        reason=draw(_SHORT),
        message=draw(_LONG),
        images=tuple(draw(st.lists(_SHORT, max_size=20))),
        link=draw(st.sampled_from(("", "https://dash.example/x", "https://x/" + "y" * 5000))),
        pods=pods,
        warnings=warnings,
    )


@pytest.mark.parametrize("type_", providers.NAMES)
def test_renders_within_the_vendor_limits_whatever_the_message(type_: str) -> None:
    with offline(type_) as peer:

        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        )
        @given(msg=messages())
        def check(msg: Message) -> None:
            rendered = preview(type_, peer.recipients(), peer.options(), msg)
            assert peer.problems(rendered) == []

        check()


SIZE_LIMITED = [t for t in providers.NAMES if getattr(CONTRACTS[t], "limits_size", True)]


@pytest.mark.parametrize("type_", SIZE_LIMITED)
def test_an_oversize_message_is_cut_with_a_marker(type_: str) -> None:
    huge = dataclasses.replace(
        sample("failure"),
        message="x" * 100_000,
        pods=tuple(PodDiagnosis(f"p{i}", "c", "CrashLoopBackOff", "y" * 3000) for i in range(60)),
    )
    with offline(type_) as peer:
        rendered = preview(type_, peer.recipients(), peer.options(), huge)
        assert peer.problems(rendered) == []
    assert "…" in str(rendered)


@pytest.fixture(scope="module")
def restarted() -> list[restart.Pair]:
    return asyncio.run(restart.restart_pairs())


@pytest.mark.parametrize("type_", providers.NAMES)
def test_a_message_sent_after_a_restart_renders_as_without_one(
    type_: str, restarted: list[restart.Pair]
) -> None:
    """A run's message still pending when the operator stops is sent by the next process: it
    must say what the uninterrupted one says, whatever the spec says by then."""
    assert restarted, "no message was sent after a restart"
    with offline(type_) as peer:
        for pair in restarted:
            before = preview(type_, peer.recipients(), peer.options(), pair.before)
            after = preview(type_, peer.recipients(), peer.options(), pair.after)
            assert comparable(after) == comparable(before), (
                pair.case,
                changed_fields(pair.before, pair.after),
            )


def comparable(rendered: Any) -> Any:
    """What a render says; an e-mail without its random MIME boundary."""
    if isinstance(rendered, EmailMessage):
        headers = [(k, v) for k, v in rendered.items() if k != "Content-Type"]
        parts = [p.get_content() for p in rendered.walk() if not p.is_multipart()]
        return headers, parts
    return rendered


def changed_fields(before: Message, after: Message) -> dict[str, tuple[Any, Any]]:
    old, new = dataclasses.asdict(before), dataclasses.asdict(after)
    return {k: (old[k], new[k]) for k in old if old[k] != new[k]}


def failed_run(failing: int) -> Message:
    """The failure message of a run that found `failing` failing containers, built as the
    runner builds it: from the run's status.diagnosis (which keeps the first few)."""
    problems = [
        PodProblem(f"crashpod{i}x", "app", "CrashLoopBackOff", "back-off", 1, 3)
        for i in range(1, failing + 1)
    ]
    state = RunState(3, Phase.FAILED, reason="CrashLoopBackOff", message="pods crash")
    facts = RunFacts(
        namespace="team-a",
        job="web",
        state=state,
        history=[],
        resources=[],
        images=["web:1.4.3"],
        diagnosis=report.diagnosis(problems, []),
        rollback={},
    )
    entry = {"id": "3/failure/chat/#deploys", "run": 3, "event": "failure"}
    return report.message_for(entry, facts, report.Presentation())


def many_pods(held: int) -> Message:
    """A message holding more failing pods than most types show."""
    pods = tuple(
        PodDiagnosis(f"crashpod{i}x", "app", "CrashLoopBackOff", "back-off", 1, 3)
        for i in range(1, held + 1)
    )
    return dataclasses.replace(sample("failure"), pods=pods)


@pytest.mark.parametrize("type_", providers.NAMES)
@pytest.mark.parametrize(
    ("failing", "build"),
    [(8, failed_run), (12, many_pods)],
    ids=["a-run-with-8-failing-pods", "a-message-with-12"],
)
def test_a_failing_pod_list_says_how_many_it_leaves_out(
    type_: str, failing: int, build: Any
) -> None:
    """Whether the run kept fewer pods than failed (status keeps 5) or the type shows fewer
    than the message holds, the count of those not shown is said ("… and 3 more")."""
    with offline(type_) as peer:
        text = str(comparable(preview(type_, peer.recipients(), peer.options(), build(failing))))
    shown = [i for i in range(1, failing + 1) if f"crashpod{i}x" in text]
    left = failing - len(shown)
    if not shown or not left:
        return  # a type that lists no pods (a deployment record), or shows every one
    # A JSON body says the count as a field; a bus carries that JSON as a string.
    counted = (f"'pods_omitted': {left}", f'"pods_omitted": {left}')
    said = re.search(rf"(?<![\d.]){left} more\b", text) or any(c in text for c in counted)
    assert said, f"{len(shown)} of {failing} pods shown, no '{left} more' in {text}"
