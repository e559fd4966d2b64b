"""The provider registry: the one list of notification types.

Each type is one module here that declares everything about it (`PROVIDER`: recipients, options,
Secret keys, renderer, sender); the Notification CRD, the spec parser, `deploybell validate`,
`render` and `notify-test`, the README table and the contract tests are derived from this list.
Adding a type = one module + one line below (+ its test peer and golden files).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deploybell.api.notification import NotificationSpec, parse_notification
from deploybell.api.notification import recipient_errors as _recipient_errors
from deploybell.api.provider import Catalogue
from deploybell.notify.providers import (
    alertmanager,
    apprise,
    awssqs,
    azuredevops,
    azureeventhub,
    bitbucket,
    bitbucketserver,
    datadog,
    discord,
    email,
    gitea,
    giteapullrequestcomment,
    github,
    githubcheckrun,
    githubdispatch,
    githubpullrequestcomment,
    gitlab,
    gitlabmergerequestcomment,
    googlechat,
    googlepubsub,
    grafana,
    hipchat,
    incidentio,
    irc,
    lark,
    matrix,
    mattermost,
    nats,
    newrelic,
    opsgenie,
    otel,
    pagerduty,
    pushover,
    rocketchat,
    sentry,
    slack,
    teams,
    telegram,
    webex,
    webhook,
    zoom,
    zulip,
)
from deploybell.notify.providers.base import Provider, ProviderType

REGISTRY: tuple[ProviderType, ...] = (
    slack.PROVIDER,
    hipchat.PROVIDER,
    irc.PROVIDER,
    email.PROVIDER,
    webhook.PROVIDER,
    teams.PROVIDER,
    discord.PROVIDER,
    googlechat.PROVIDER,
    mattermost.PROVIDER,
    telegram.PROVIDER,
    pagerduty.PROVIDER,
    apprise.PROVIDER,
    github.PROVIDER,
    gitlab.PROVIDER,
    grafana.PROVIDER,
    datadog.PROVIDER,
    gitea.PROVIDER,
    bitbucket.PROVIDER,
    bitbucketserver.PROVIDER,
    azuredevops.PROVIDER,
    rocketchat.PROVIDER,
    webex.PROVIDER,
    matrix.PROVIDER,
    zulip.PROVIDER,
    lark.PROVIDER,
    zoom.PROVIDER,
    pushover.PROVIDER,
    githubdispatch.PROVIDER,
    opsgenie.PROVIDER,
    alertmanager.PROVIDER,
    incidentio.PROVIDER,
    nats.PROVIDER,
    otel.PROVIDER,
    githubpullrequestcomment.PROVIDER,
    gitlabmergerequestcomment.PROVIDER,
    githubcheckrun.PROVIDER,
    sentry.PROVIDER,
    newrelic.PROVIDER,
    awssqs.PROVIDER,
    googlepubsub.PROVIDER,
    azureeventhub.PROVIDER,
    giteapullrequestcomment.PROVIDER,
)

TYPES: Mapping[str, ProviderType] = {p.type: p for p in REGISTRY}
CATALOGUE = Catalogue(tuple(p.rules for p in REGISTRY))
NAMES: tuple[str, ...] = CATALOGUE.names


def parse(spec: Mapping[str, Any]) -> NotificationSpec:
    """A Notification's spec parsed against every registered type (SpecError when invalid)."""
    return parse_notification(spec, CATALOGUE)


def recipient_errors(type_: str, recipients: Sequence[str]) -> list[str]:
    """One "spec.recipients[i]: why" line per recipient that `type_` cannot deliver to."""
    return _recipient_errors(type_, recipients, CATALOGUE)


def build() -> dict[str, Provider]:
    """A fresh sender per type (they pool connections, so one instance per operator)."""
    return {p.type: p.sender() for p in REGISTRY}
