"""What the step mixins of `JobRunner` (rollback.py, target_steps.py) use of it, declared once;
`JobRunner` provides all of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploybell.api.deployjob import DeployJobSpec
from deploybell.deploy.apply import Applier
from deploybell.deploy.live import LiveJob, Timers
from deploybell.deploy.ports import JobPorts
from deploybell.deploy.run import RunState
from deploybell.deploy.runlog import RunLog
from deploybell.deploy.status import JobStatus


class RunnerSteps:
    """The base of `JobRunner`'s step mixins."""

    status: JobStatus
    spec: DeployJobSpec | None
    ports: JobPorts
    log: RunLog
    timers: Timers

    if TYPE_CHECKING:

        @property
        def applier(self) -> Applier: ...
        @property
        def state(self) -> RunState: ...
        @state.setter
        def state(self, value: RunState) -> None: ...
        async def persist(self, live: LiveJob) -> None: ...
