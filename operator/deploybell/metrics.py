"""Prometheus metrics (prometheus_client); served on the operator's metrics port when set."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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
