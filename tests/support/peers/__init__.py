"""Local peers that speak each destination's protocol as the vendor does.

`CONTRACTS` maps every registered provider type to its peer, seen through the contract that
tests/providers/test_contract.py runs over each type (one line per type, as in the registry).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tests.support.peers.alertmanager import AlertmanagerContract
from tests.support.peers.apprise import AppriseJsonPeer
from tests.support.peers.awssqs import AwssqsContract
from tests.support.peers.azuredevops import AzureDevopsContract
from tests.support.peers.azureeventhub import AzureeventhubContract
from tests.support.peers.bitbucket import BitbucketContract
from tests.support.peers.bitbucketserver import BitbucketServerContract
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
from tests.support.peers.gitea import GiteaContract
from tests.support.peers.gitea_pulls import GiteaPullRequestCommentContract
from tests.support.peers.github import GithubContract
from tests.support.peers.github_pulls import (
    GithubCheckRunContract,
    GithubPullRequestCommentContract,
)
from tests.support.peers.githubdispatch import GithubDispatchContract
from tests.support.peers.gitlab import GitlabContract
from tests.support.peers.gitlab_notes import GitlabMergeRequestCommentContract
from tests.support.peers.googlechat import GooglechatContract
from tests.support.peers.googlepubsub import GooglepubsubContract
from tests.support.peers.grafana import GrafanaContract
from tests.support.peers.incidentio import IncidentioContract
from tests.support.peers.lark import LarkContract
from tests.support.peers.matrix import MatrixPeer
from tests.support.peers.mattermost import MattermostPeer
from tests.support.peers.nats import NatsContract
from tests.support.peers.newrelic import NewrelicContract
from tests.support.peers.opsgenie import OpsgenieContract
from tests.support.peers.otel import OtelContract
from tests.support.peers.pagerduty import PagerdutyPeer
from tests.support.peers.pushover import PushoverContract
from tests.support.peers.rocketchat import RocketchatPeer
from tests.support.peers.sentry import SentryContract
from tests.support.peers.teams import TeamsContract
from tests.support.peers.telegram import TelegramPeer
from tests.support.peers.webex import WebexPeer
from tests.support.peers.zoom import ZoomContract
from tests.support.peers.zulip import ZulipPeer

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
    "gitea": GiteaContract,
    "bitbucket": BitbucketContract,
    "bitbucketserver": BitbucketServerContract,
    "azuredevops": AzureDevopsContract,
    "rocketchat": RocketchatPeer,
    "webex": WebexPeer,
    "matrix": MatrixPeer,
    "zulip": ZulipPeer,
    "lark": LarkContract,
    "zoom": ZoomContract,
    "pushover": PushoverContract,
    "githubdispatch": GithubDispatchContract,
    "opsgenie": OpsgenieContract,
    "alertmanager": AlertmanagerContract,
    "incidentio": IncidentioContract,
    "nats": NatsContract,
    "otel": OtelContract,
    "githubpullrequestcomment": GithubPullRequestCommentContract,
    "gitlabmergerequestcomment": GitlabMergeRequestCommentContract,
    "githubcheckrun": GithubCheckRunContract,
    "sentry": SentryContract,
    "newrelic": NewrelicContract,
    "awssqs": AwssqsContract,
    "googlepubsub": GooglepubsubContract,
    "azureeventhub": AzureeventhubContract,
    "giteapullrequestcomment": GiteaPullRequestCommentContract,
}
