"""Where a DeployJob's runs happen: the operator's own cluster, or the one `spec.cluster` names.

Everything a run does to its objects (apply, impersonation, health, diagnosis, the rollback
snapshot) goes to that cluster; the DeployJob, its status, Events, `manifestsFrom` ConfigMaps and
notifications stay in the operator's. The kubeconfig is read from the Secret at every step (from
memory: the operator keeps referenced Secrets from its Secret watch), so a rotated Secret is used
from the next request on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from deploybell.api.deployjob import ClusterRef, DeployJobSpec
from deploybell.api.kubeconfig import KubeConfig, KubeConfigError, parse_kubeconfig
from deploybell.clients.errors import ApiError, CertificateInvalid, Forbidden, Unauthorized
from deploybell.clients.targets import TargetCluster, TargetPool
from deploybell.clients.transport import ConfigError
from deploybell.deploy.apply import Applier
from deploybell.deploy.observe import Observer

INVALID_KUBECONFIG = "InvalidKubeConfig"
UNREACHABLE = "ClusterUnreachable"
WAITING = "WaitingForCluster"
TARGET_REASONS = frozenset({INVALID_KUBECONFIG, UNREACHABLE})
"""A run that failed for one of these never reached its cluster: there is nothing to roll back."""


class TargetProblem(Exception):
    """The target cluster cannot be used: `reason` and `message` end the run."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Place:
    """Where runs go: `name` is shown in messages ("" for the operator's own cluster)."""

    name: str
    applier: Applier
    observer: Observer

    @property
    def remote(self) -> bool:
        return self.applier.remote


class SecretSource(Protocol):
    async def secret(self, namespace: str, name: str) -> Mapping[str, str] | None: ...


class Places:
    """One DeployJob's place, resolved from its spec at each step; holds the target client
    while a run needs it."""

    def __init__(
        self,
        namespace: str,
        home: Place,
        secrets: SecretSource | None = None,
        targets: TargetPool | None = None,
        default_service_account: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.home = home
        self.place = home
        self.secrets = secrets
        self.targets = targets
        self.default_sa = default_service_account
        self._target: TargetCluster | None = None
        self._text: str | None = None  # the kubeconfig last parsed, and what it gave
        self._config: KubeConfig | None = None

    @staticmethod
    def fallback_name(spec: DeployJobSpec | None) -> str:
        """The cluster's name when its kubeconfig cannot be read."""
        ref = spec.cluster if spec else None
        return (ref.name or f"kubeconfig {ref.secret_name}") if ref else ""

    async def resolve(self, spec: DeployJobSpec | None) -> Place:
        """The place of runs of this spec; `TargetProblem` when its cluster cannot be used."""
        ref = spec.cluster if spec else None
        if ref is None:
            await self.release()
            return self.home
        config = await self._kubeconfig(ref)
        name = ref.name or config.context
        if self._target is None or self._target.key != config.fingerprint:
            if self.targets is None:
                raise TargetProblem(INVALID_KUBECONFIG, "this operator serves no target clusters")
            try:
                target = await self.targets.acquire(config)
            except ConfigError as e:
                raise TargetProblem(INVALID_KUBECONFIG, f"{self._where(ref)}: {e}") from None
            await self.release()
            self._target = target
            self.place = Place(
                name,
                Applier(target.kube, self.default_sa, sources=self.home.applier.cluster),
                Observer(target.kube, target.watches, self.default_sa),
            )
        elif name != self.place.name:
            self.place = replace(self.place, name=name)
        return self.place

    async def release(self) -> None:
        """Let go of the target client (the run ended, or moved to another kubeconfig)."""
        target, self._target = self._target, None
        if target is None:
            return
        place, self.place = self.place, self.home
        await place.observer.unfollow()
        assert self.targets is not None
        await self.targets.release(target)

    async def _kubeconfig(self, ref: ClusterRef) -> KubeConfig:
        where = self._where(ref)
        data = await self.secrets.secret(self.namespace, ref.secret_name) if self.secrets else None
        if data is None:
            raise TargetProblem(
                INVALID_KUBECONFIG,
                f"Secret {ref.secret_name} not found in namespace {self.namespace} "
                "(spec.cluster.kubeConfig.secretRef)",
            )
        text = data.get(ref.secret_key)
        if text is None:
            keys = ", ".join(sorted(data)) or "none"
            raise TargetProblem(INVALID_KUBECONFIG, f"{where}: no such key (keys: {keys})")
        if text != self._text or self._config is None:
            try:
                self._config = parse_kubeconfig(text)
            except KubeConfigError as e:
                self._text, self._config = None, None
                raise TargetProblem(INVALID_KUBECONFIG, f"{where}: the kubeconfig {e}") from None
            self._text = text
        return self._config

    @staticmethod
    def _where(ref: ClusterRef) -> str:
        return f"Secret {ref.secret_name} key {ref.secret_key}"


# --- what a target cluster's error means for the run in flight ----------------------------------

WAIT_BACKOFF = (2.0, 5.0, 10.0, 15.0)


@dataclass(frozen=True)
class Waiting:
    """A target that does not answer: wait `delay` seconds more, or give up with a reason."""

    give_up: bool
    reason: str
    message: str
    delay: float


def target_failure(name: str, error: ApiError) -> tuple[str, str] | None:
    """(reason, message) when the error ends the run now; None when it may pass (transient)."""
    if error.transient:
        return None
    where = f"cluster {name}"
    if isinstance(error, Unauthorized):
        return INVALID_KUBECONFIG, f"{where} refused the kubeconfig's credentials ({error})"
    if isinstance(error, CertificateInvalid):
        return UNREACHABLE, f"{where} at {error.cluster}: {error.message}"
    if isinstance(error, Forbidden):
        return "Forbidden", f"{where}: the kubeconfig's identity may not do this: {error.message}"
    return "ApplyFailed", f"{where} answered {error}"


def wait_for_target(
    name: str, error: ApiError, elapsed: float, limit: float, failures: int
) -> Waiting:
    """A temporary outage is waited out within maxWaitSeconds, then the run fails."""
    if elapsed >= limit:
        return Waiting(
            True,
            UNREACHABLE,
            f"cluster {name} did not answer within maxWaitSeconds={limit:.0f}: {error.message}",
            0.0,
        )
    delay = WAIT_BACKOFF[min(failures, len(WAIT_BACKOFF)) - 1] if failures else WAIT_BACKOFF[0]
    message = f"waiting for cluster {name} (up to maxWaitSeconds={limit:.0f}): {error.message}"
    return Waiting(False, WAITING, message, min(delay, max(limit - elapsed, 0.1)))
