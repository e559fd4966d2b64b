"""A job's side of the delivery ledger: the entries each run event adds, the message built for
each entry, and the outbox that sends them (whose results come back through `pump`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from deploybell.api.deployjob import DeployJobSpec
from deploybell.deploy import report
from deploybell.deploy.live import utcnow
from deploybell.deploy.status import JobStatus
from deploybell.notify import ledger
from deploybell.notify.model import Message
from deploybell.notify.outbox import Outbox, Report


class RunMessages:
    """The ledger of one DeployJob, kept in its `JobStatus`; Events due are kept in `notes`."""

    def __init__(
        self, namespace: str, job: str, outbox: Outbox, presentation: report.Presentation
    ) -> None:
        self.namespace, self.job = namespace, job
        self.outbox = outbox
        self.presentation = presentation
        self.notes: list[Report] = []  # Events to post after the next status write

    def pending(self, status: JobStatus) -> bool:
        """Messages being sent or still to send."""
        return self.outbox.busy or any(
            e.get("state") == ledger.Delivery.PENDING.value for e in status.notifications
        )

    def record(self, status: JobStatus, spec: DeployJobSpec | None, event: str) -> None:
        """Entries for `event` of the latest run, expanded per recipient (or noted as waiting
        for their Notification) so that the write recording the event already holds them."""
        subscribers = spec.subscribers(event) if spec else ()
        added = ledger.add_event(
            status.notifications, status.state.run, event, subscribers, utcnow()
        )
        status.notifications, notes = self.outbox.resolve(added, datetime.now(UTC))
        self.notes += notes

    def pump(self, status: JobStatus, start: bool = True) -> tuple[bool, list[Report]]:
        """Results of finished sends in, due entries out (unless not `start`): (the ledger
        moved, Events to post)."""
        before = status.notifications

        def message_for(entry: Mapping[str, Any]) -> Message:
            return self.message_for(status, entry)

        status.notifications, reports = self.outbox.pump(status.notifications, message_for, start)
        reports, self.notes = self.notes + reports, []
        return status.notifications != before, reports

    def message_for(self, status: JobStatus, entry: Mapping[str, Any]) -> Message:
        """From status alone: a fresh process builds the same message (see report.message_for)."""
        facts = report.RunFacts(
            self.namespace,
            self.job,
            status.state,
            status.history,
            status.resources,
            status.images,
            status.diagnosis,
            status.rollback,
            status.cluster,
        )
        return report.message_for(entry, facts, self.presentation)
