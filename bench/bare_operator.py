"""The framework floor: a kopf operator watching what a run observes, with no-op handlers.

The kinds a run watches (`deploybell.api.kinds.WATCHED_KINDS`), with the same label filters,
watched the way kopf watches (cluster-wide or per watched namespace, all the time) plus
DeployJobs, Notifications and Secrets; and nothing else: no indexes, no daemons, no status
writes, no finalizers, so it only reads. Run it as

    python -m kopf run --standalone -n NAMESPACE bench/bare_operator.py
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from deploybell.api.constants import LABEL_JOB, LABEL_JOB_NAMESPACE
from deploybell.api.kinds import WATCHED_KINDS

LABELS = {LABEL_JOB: kopf.PRESENT, LABEL_JOB_NAMESPACE: kopf.PRESENT}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def ignore(**_: Any) -> None:
    """Receives the event and does nothing with it."""


kopf.on.event("deploybell.io", "v1alpha1", "deployjobs", id="deployjobs")(ignore)
kopf.on.event("deploybell.io", "v1alpha1", "notifications", id="notifications")(ignore)
kopf.on.event("", "v1", "secrets", id="secrets")(ignore)
for _kind in WATCHED_KINDS:
    kopf.on.event(_kind.group, _kind.version, _kind.plural, labels=LABELS, id=_kind.plural)(ignore)
