"""One module per provider type behind one Protocol; `build` maps spec.type to an instance."""

from __future__ import annotations

from deploybell.api.constants import PROVIDER_TYPES
from deploybell.notify.providers.base import Provider


def build() -> dict[str, Provider]:
    """A fresh provider per type (they pool connections, so one instance per operator)."""
    from deploybell.notify.providers.email import EmailProvider
    from deploybell.notify.providers.hipchat import HipchatProvider
    from deploybell.notify.providers.irc import IrcProvider
    from deploybell.notify.providers.slack import SlackProvider
    from deploybell.notify.providers.webhook import WebhookProvider

    providers: dict[str, Provider] = {
        "slack": SlackProvider(),
        "hipchat": HipchatProvider(),
        "irc": IrcProvider(),
        "email": EmailProvider(),
        "webhook": WebhookProvider(),
    }
    assert set(providers) == set(PROVIDER_TYPES), "every provider type needs a provider"
    return providers
