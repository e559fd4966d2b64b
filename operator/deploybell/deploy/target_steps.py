"""spec.cluster: the steps of `JobRunner` that depend on where the run happens (finding the
cluster, what a run does while it does not answer, cleaning up there after a deletion)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from deploybell.api.deployjob import DeployJobSpec
from deploybell.clients.errors import ApiError
from deploybell.deploy.live import LiveJob
from deploybell.deploy.manifests import ObjectRef
from deploybell.deploy.steps import RunnerSteps
from deploybell.deploy.target import (
    WAITING,
    Places,
    TargetProblem,
    target_failure,
    wait_for_target,
)


class TargetSteps(RunnerSteps):
    """Mixed into `JobRunner`, which provides the attributes and steps declared here."""

    places: Places
    target_failures: int

    if TYPE_CHECKING:

        async def fail(self, reason: str, message: str, live: LiveJob) -> None: ...

    async def locate(self, live: LiveJob) -> bool:
        """Resolve the cluster the run deploys to (spec.cluster); False: the run failed."""
        try:
            place = await self.places.resolve(self.spec)
        except TargetProblem as e:
            self.status.cluster = Places.fallback_name(self.spec)
            await self.fail(e.reason, e.message, live)
            return False
        self.status.cluster = place.name
        return True

    async def target_trouble(self, live: LiveJob, error: ApiError) -> float | None:
        """The target cluster failed a request: fail the run, or wait within maxWaitSeconds."""
        name = self.places.place.name or error.cluster
        failure = target_failure(name, error)
        if failure is not None:
            await self.fail(*failure, live)
            return None
        limit = self.spec.max_wait_seconds if self.spec else 600
        elapsed = time.monotonic() - self.timers.started
        self.target_failures += 1
        outcome = wait_for_target(name, error, elapsed, limit, self.target_failures)
        if outcome.give_up:
            await self.fail(outcome.reason, outcome.message, live)
            return None
        if self.state.message != outcome.message:
            self.log.warning(self.state.run, "waiting-for-cluster", outcome.message)
            self.state = replace(self.state, reason=WAITING, message=outcome.message)
            await self.persist(live)
        return outcome.delay

    async def clean_up(self, live: LiveJob, spec: DeployJobSpec) -> None:
        """The DeployJob is deleted: prune its objects (`prune`) and drop the rollback snapshot a
        remote cluster keeps (no owner there collects it)."""
        try:
            place = await self.places.resolve(spec)
        except TargetProblem as e:
            if spec.prune or (spec.cluster and spec.rollback_on_failure):
                note = f"{e.message}; nothing deleted there"
                await self.ports.record_event(True, "CleanupSkipped", note)
            return
        if spec.prune:
            refs = {ObjectRef.from_status(r) for r in self.status.resources}
            await self.applier.prune(live.namespace, spec, refs)
        if place.remote and spec.rollback_on_failure:
            await self.applier.forget_last_good(live.namespace, live.name, spec)
