"""`deploybell render`: what each provider would send for a sample run, built by the providers'
own pure renderers and printed as text, without any network."""

from __future__ import annotations

from deploybell.api.notification import NotificationSpec
from deploybell.notify import providers
from deploybell.notify.dispatch import template_override
from deploybell.notify.model import Message
from deploybell.notify.providers.base import DeliveryError, Preview

RULE = "=" * 78


def preview(name: str, spec: NotificationSpec, message: Message, sender: str) -> str:
    """The whole preview of one Notification: a header, then one section per recipient."""
    provider = providers.TYPES[spec.type]
    title, problem = template_override(spec, message)
    out = [RULE, f"Notification {name} ({spec.type}), event {message.event}"]
    if problem:
        out.append(
            f"warning: template not used, the default message would be sent instead: {problem}"
        )
    recipients = [", ".join(spec.recipients)] if provider.preview_once else spec.recipients
    for recipient in recipients or ("",):
        try:
            section = provider.preview(Preview(spec, recipient, message, title, sender))
        except (ValueError, DeliveryError) as e:  # what the provider would refuse to send
            section = [f"to {recipient or 'the destination'}: not sendable: {e}"]
        out += [RULE, *section]
    return "\n".join(out) + "\n"
