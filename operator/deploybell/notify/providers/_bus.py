"""What the message-bus types share (pure): the CloudEvent the `webhook` type sends, its body cut
down until it fits the bus's size limit.

A bus (SQS, Pub/Sub, Event Hubs) refuses the whole message past its limit, so a run with a huge
message or many failing pods is published at less detail: the text and each item's message
clipped (with "…"), the lists shortened and the failing pods left out counted in
`pods_omitted`. The CloudEvent itself is `webhook.event`, never a second builder."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _layout, base, webhook

# Full detail first, then the card levels every rich type shrinks through.
LEVELS: tuple[_layout.Level | None, ...] = (None, *_layout.CARD_LEVELS)


def shrunk(message: Message, level: _layout.Level | None) -> Message:
    """The message showing at most what `level` allows (as it is for None)."""
    if level is None:
        return message
    most, text, value = level.items, level.summary_chars, level.value_chars
    return dataclasses.replace(
        message,
        message=clip(message.message, text),
        reason=clip(message.reason, value),
        objects=tuple(
            dataclasses.replace(o, message=clip(o.message, value)) for o in message.objects
        ),
        pods=tuple(dataclasses.replace(p, message=clip(p.message, value)) for p in message.pods)[
            :most
        ],
        pods_omitted=message.pods_omitted + max(len(message.pods) - most, 0),
        warnings=tuple(
            dataclasses.replace(w, message=clip(w.message, value)) for w in message.warnings
        )[:most],
    )


def _clipped(override: base.Title | None, level: _layout.Level | None) -> base.Title | None:
    if override is None or level is None:
        return override
    title = clip(override.title, level.value_chars) if override.title else override.title
    text = clip(override.text, level.summary_chars) if override.text else override.text
    return base.Title(title, text)


def fitted(
    message: Message, override: base.Title | None, now: datetime | None, limit: int
) -> bytes:
    """The serialized CloudEvent (UTF-8 JSON) at the most detail within `limit` bytes."""
    return _layout.fit(
        LEVELS,
        lambda level: webhook.serialize(shrunk(message, level), _clipped(override, level), now),
        lambda body: len(body) <= limit,
    )
