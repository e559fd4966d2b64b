"""The framework floor: a kopf operator watching what deploybell watches, with no-op handlers.

Same kinds, same label filters, same watch settings as deploybell, and nothing else: no
indexes, no daemons, no status writes, no finalizers, so it only reads. Run it as

    python -m kopf run --standalone -n NAMESPACE bench/bare_operator.py
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

LABELS = {"deploybell.io/job": kopf.PRESENT, "deploybell.io/job-namespace": kopf.PRESENT}
WORKLOADS = (
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("apps", "v1", "daemonsets"),
    ("apps", "v1", "replicasets"),
    ("batch", "v1", "jobs"),
    ("", "v1", "pods"),
)


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
for _group, _version, _plural in WORKLOADS:
    kopf.on.event(_group, _version, _plural, labels=LABELS, id=_plural)(ignore)
