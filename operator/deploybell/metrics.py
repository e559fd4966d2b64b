"""Prometheus metrics (prometheus_client); served on the operator's metrics port when set.

The DORA counters are not counted in memory: `JobView` keeps what the watch last saw of each
DeployJob's `status.totals`, and `DoraCollector` turns it into counters at scrape time, so a
restarted operator or a second replica reports the same numbers (take `max` over instances).
The histograms are observed once per outcome, by the process whose status write recorded it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from deploybell.api.totals import OUTCOME_NAMES, Totals, parse_time

NOTIFICATIONS = Counter(
    "deploybell_notifications_total",
    "Notification delivery attempts by provider type, run event and result.",
    ["type", "event", "result"],
)
DELIVERY_SECONDS = Histogram(
    "deploybell_notification_delivery_seconds",
    "Time to deliver one message to one recipient, by provider type.",
    ["type"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RUNS = Counter("deploybell_deployjob_runs_total", "Finished DeployJob runs by result.", ["result"])
RUN_SECONDS = Histogram(
    "deploybell_deployjob_run_duration_seconds",
    "Duration of finished DeployJob runs.",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200, 3600),
)

# DORA histograms: by namespace and environment, not by DeployJob (buckets x jobs would be many
# series); no commit SHAs or run numbers in labels.
DEPLOYMENT_SECONDS = Histogram(
    "deploybell_deployment_duration_seconds",
    "Duration of finished DeployJob runs (start to outcome), by environment and outcome.",
    ["namespace", "environment", "outcome"],
    buckets=(5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
LEAD_TIME_SECONDS = Histogram(
    "deploybell_lead_time_seconds",
    "Lead time for changes: spec.source.committedAt to the successful run's end.",
    ["namespace", "environment"],
    buckets=(300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800, 1209600, 2592000),
)
TIME_TO_RESTORE_SECONDS = Histogram(
    "deploybell_time_to_restore_seconds",
    "Time to restore: the end of the first failed run after a success to the next success.",
    ["namespace", "environment"],
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800),
)


class FinishedRun(Protocol):
    """What a finished run gives the histograms (deploy.dora.Observation)."""

    @property
    def namespace(self) -> str: ...
    @property
    def environment(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def duration(self) -> float | None: ...
    @property
    def lead_time(self) -> float | None: ...
    @property
    def time_to_restore(self) -> float | None: ...


def observe(observation: FinishedRun) -> None:
    """Observe one finished run's durations (after its outcome's status write succeeded)."""
    ns, env = observation.namespace, observation.environment
    if observation.duration is not None:
        DEPLOYMENT_SECONDS.labels(ns, env, observation.outcome).observe(observation.duration)
    if observation.lead_time is not None:
        LEAD_TIME_SECONDS.labels(ns, env).observe(observation.lead_time)
    if observation.time_to_restore is not None:
        TIME_TO_RESTORE_SECONDS.labels(ns, env).observe(observation.time_to_restore)


class JobView:
    """What the watch last saw of each DeployJob's run counts (nothing else is kept)."""

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], Totals] = {}

    def seen(self, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        totals = Totals.from_status((body.get("status") or {}).get("totals"))
        if totals is None:  # no outcome yet: zeros from creation, so the first run counts
            source = (body.get("spec") or {}).get("source") or {}
            environment = str(source.get("environment") or key[0])
            totals = Totals(environment, str(meta.get("creationTimestamp") or ""))
        self._jobs[key] = totals

    def gone(self, namespace: str, name: str) -> None:
        self._jobs.pop((namespace, name), None)

    def items(self) -> list[tuple[tuple[str, str], Totals]]:
        return sorted(self._jobs.items())


class DoraCollector(Collector):
    """deploybell_deployments_total and deploybell_change_failures_total, read from `view`."""

    def __init__(self, view: JobView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        deployments = CounterMetricFamily(
            "deploybell_deployments",
            "Finished DeployJob runs by outcome (succeeded, failed, canceled), from status.",
            labels=["namespace", "deployjob", "environment", "outcome"],
        )
        failures = CounterMetricFamily(
            "deploybell_change_failures",
            "Failed DeployJob runs (changes that failed), from status.",
            labels=["namespace", "deployjob", "environment"],
        )
        for (namespace, name), totals in self.view.items():
            since = parse_time(totals.since)
            created = since.timestamp() if since else None
            for outcome in OUTCOME_NAMES:
                labels = [namespace, name, totals.environment, outcome]
                deployments.add_metric(labels, totals.count(outcome), created=created)
            labels = [namespace, name, totals.environment]
            failures.add_metric(labels, totals.failed, created=created)
        yield deployments
        yield failures

    def describe(self) -> Iterator[Metric]:
        return iter(())


JOBS = JobView()
REGISTRY.register(DoraCollector(JOBS))

WATCHED_NAMESPACES = Gauge(
    "deploybell_run_watches",
    "Watches open on the kinds a run observes, per namespace (only while a run is in flight).",
    ["namespace"],
)

TARGET_CLUSTERS = Gauge(
    "deploybell_target_clusters",
    "Clients open to target clusters (spec.cluster): one per cluster and identity, only while "
    "runs are in flight there.",
)


def watching(namespace: str, watches: int) -> None:
    """`watches` open in `namespace` now; 0 removes the series."""
    if watches:
        WATCHED_NAMESPACES.labels(namespace).set(watches)
    else:
        WATCHED_NAMESPACES.remove(namespace)


def serve(port: int, address: str = "0.0.0.0") -> None:  # noqa: S104 (a pod's metrics port)
    """Expose /metrics; 0 disables it."""
    if port:
        start_http_server(port, addr=address)
