"""Local peers that speak each destination's protocol as the vendor does.

`CONTRACTS` maps every registered provider type to its peer, seen through the contract that
tests/providers/test_contract.py runs over each type (one line per type, as in the registry).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tests.support.peers.alertmanager import AlertmanagerContract
from tests.support.peers.apprise import AppriseJsonPeer
from tests.support.peers.contract import (
    Contract,
    EmailContract,
    HipchatContract,
    IrcContract,
    SlackContract,
    WebhookContract,
)
from tests.support.peers.datadog import DatadogContract
from tests.support.peers.discord import DiscordContract
from tests.support.peers.github import GithubContract
from tests.support.peers.gitlab import GitlabContract
from tests.support.peers.googlechat import GooglechatContract
from tests.support.peers.grafana import GrafanaContract
from tests.support.peers.incidentio import IncidentioContract
from tests.support.peers.mattermost import MattermostPeer
from tests.support.peers.nats import NatsContract
from tests.support.peers.opsgenie import OpsgenieContract
from tests.support.peers.otel import OtelContract
from tests.support.peers.pagerduty import PagerdutyPeer
from tests.support.peers.teams import TeamsContract
from tests.support.peers.telegram import TelegramPeer

CONTRACTS: Mapping[str, Callable[[], Contract]] = {
    "slack": SlackContract,
    "hipchat": HipchatContract,
    "irc": IrcContract,
    "email": EmailContract,
    "webhook": WebhookContract,
    "teams": TeamsContract,
    "discord": DiscordContract,
    "googlechat": GooglechatContract,
    "mattermost": MattermostPeer,
    "telegram": TelegramPeer,
    "pagerduty": PagerdutyPeer,
    "apprise": AppriseJsonPeer,
    "github": GithubContract,
    "gitlab": GitlabContract,
    "grafana": GrafanaContract,
    "datadog": DatadogContract,
    "opsgenie": OpsgenieContract,
    "alertmanager": AlertmanagerContract,
    "incidentio": IncidentioContract,
    "nats": NatsContract,
    "otel": OtelContract,
}
