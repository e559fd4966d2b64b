"""Operator-wide settings, from flags or environment variables (DEPLOYBELL_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


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

    generic_recheck_seconds: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)
    """Backoff for re-reading kinds that have no watch (generic custom resources)."""

    history_limit: int = 10
    """Runs kept in status.history."""

    deletion_grace_seconds: int = 30
    """How long a deleted DeployJob waits for its cancel notifications before letting go."""

    metrics_port: int = 0
    """Port for Prometheus metrics; 0 disables them."""

    log_format: str = "plain"
    """plain or json."""

    extra: dict[str, str] = field(default_factory=dict)
    """Reserved for provider defaults (SMTP and the like) filled by the delivery layer."""

    @classmethod
    def from_env(cls) -> Settings:
        raw_ns = os.environ.get("DEPLOYBELL_NAMESPACES", "")
        return cls(
            namespaces=tuple(ns.strip() for ns in raw_ns.split(",") if ns.strip()),
            default_service_account=os.environ.get("DEPLOYBELL_DEFAULT_SERVICE_ACCOUNT") or None,
            failfast_grace_seconds=_env_int("DEPLOYBELL_FAILFAST_GRACE_SECONDS", 10),
            metrics_port=_env_int("DEPLOYBELL_METRICS_PORT", 0),
            log_format=os.environ.get("DEPLOYBELL_LOG_FORMAT", "plain"),
        )
