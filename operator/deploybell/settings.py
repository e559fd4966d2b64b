"""Operator-wide settings, from flags or environment variables (DEPLOYBELL_*)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from deploybell.api.constants import LABEL_SHARD

SHARD_KEY = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
"""A label value (at most 63 characters), not empty."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    """What the operator needs to know that no single resource says."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means cluster-wide."""

    default_service_account: str | None = None
    """ServiceAccount impersonated for DeployJobs that name none (lockdown mode); None: as self."""

    failfast_grace_seconds: int = 10
    """How long a new pod may sit in CrashLoopBackOff/ImagePullBackOff before the run fails."""

    history_limit: int = 10
    """Runs kept in status.history per DeployJob (1 to MAX_HISTORY): what `kubectl deploybell
    dora` computes from. Each entry is ~0.3-0.8 kB of status, written with every status patch."""

    deletion_grace_seconds: int = 30
    """How long a deleted DeployJob waits for its cancel notifications before letting go."""

    metrics_port: int = 0
    """Port for Prometheus metrics; 0 disables them."""

    cluster_name: str = ""
    """Named in every message, so people know which cluster a deploy ran on."""

    link_template: str = ""
    """A link in every message, e.g. https://dash.example/{namespace}/{job}?run={run}."""

    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_from: str = "deploybell@localhost"
    smtp_tls: str = "none"
    """starttls, tls (implicit) or none."""
    smtp_username: str = ""
    smtp_password: str = ""

    delivery_concurrency: int = 20
    """Messages sent at once, over all DeployJobs."""

    delivery_give_up_seconds: int = 3600
    """A message that could not be delivered for this long is marked Failed."""

    log_format: str = "plain"
    """plain or json."""

    shard_key: str = ""
    """Handle only DeployJobs labelled sharding.deploybell.io/key=<this>; "": only those without
    the label. Filtered by the API server (a label selector on the DeployJob watch)."""

    handoff_grace_seconds: int = 10
    """A DeployJob that arrives mid-run from elsewhere (relabelled from another shard) is left
    alone this long, so that the shard it left can record the sends it had in flight."""

    peering_lifetime_seconds: int = 60
    """kopf peering: how long a peer that stopped reporting (e.g. SIGKILLed) still counts, so
    how long its standby waits before it takes over. kopf's default is 60."""

    @classmethod
    def from_env(cls) -> Settings:
        raw_ns = os.environ.get("DEPLOYBELL_NAMESPACES", "")
        return cls(
            namespaces=tuple(ns.strip() for ns in raw_ns.split(",") if ns.strip()),
            default_service_account=os.environ.get("DEPLOYBELL_DEFAULT_SERVICE_ACCOUNT") or None,
            failfast_grace_seconds=_env_int("DEPLOYBELL_FAILFAST_GRACE_SECONDS", 10),
            history_limit=_env_int("DEPLOYBELL_HISTORY_LIMIT", 10),
            metrics_port=_env_int("DEPLOYBELL_METRICS_PORT", 0),
            log_format=os.environ.get("DEPLOYBELL_LOG_FORMAT", "plain"),
            cluster_name=os.environ.get("DEPLOYBELL_CLUSTER_NAME", ""),
            link_template=os.environ.get("DEPLOYBELL_LINK_TEMPLATE", ""),
            smtp_host=os.environ.get("DEPLOYBELL_SMTP_HOST", "localhost"),
            smtp_port=_env_int("DEPLOYBELL_SMTP_PORT", 25),
            smtp_from=os.environ.get("DEPLOYBELL_SMTP_FROM", "deploybell@localhost"),
            smtp_tls=os.environ.get("DEPLOYBELL_SMTP_TLS", "none"),
            smtp_username=os.environ.get("DEPLOYBELL_SMTP_USERNAME", ""),
            smtp_password=os.environ.get("DEPLOYBELL_SMTP_PASSWORD", ""),
            delivery_concurrency=_env_int("DEPLOYBELL_DELIVERY_CONCURRENCY", 20),
            delivery_give_up_seconds=_env_int("DEPLOYBELL_DELIVERY_GIVE_UP_SECONDS", 3600),
            shard_key=os.environ.get("DEPLOYBELL_SHARD_KEY", ""),
            handoff_grace_seconds=_env_int("DEPLOYBELL_HANDOFF_GRACE_SECONDS", 10),
            peering_lifetime_seconds=_env_int("DEPLOYBELL_PEERING_LIFETIME", 60),
        )

    @property
    def deployjob_selector(self) -> str:
        """The label selector of this shard's DeployJob watch."""
        return f"{LABEL_SHARD}={self.shard_key}" if self.shard_key else f"!{LABEL_SHARD}"
