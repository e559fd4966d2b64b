"""A run's story in the operator's log: one line per transition, apply, verdict and delivery.

Every line carries `namespace`, `deployjob`, `run` and `event` as fields (JSON keys with
`--log-format json`), so `jq 'select(.deployjob == "web")'` tells one job's story. Messages never
hold secrets: delivery errors are masked before they get here.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("deploybell.run")


class RunLog:
    """The log of one DeployJob's runs."""

    def __init__(self, namespace: str, job: str) -> None:
        self.namespace = namespace
        self.job = job

    def info(self, run: int, event: str, message: str, **fields: Any) -> None:
        self._log(logging.INFO, run, event, message, fields)

    def warning(self, run: int, event: str, message: str, **fields: Any) -> None:
        self._log(logging.WARNING, run, event, message, fields)

    def _log(self, level: int, run: int, event: str, message: str, fields: dict[str, Any]) -> None:
        if not logger.isEnabledFor(level):
            return
        extra = {"namespace": self.namespace, "deployjob": self.job, "run": run, "event": event}
        logger.log(
            level,
            "%s/%s run %d: %s",
            self.namespace,
            self.job,
            run,
            message,
            extra={**fields, **extra},
        )
