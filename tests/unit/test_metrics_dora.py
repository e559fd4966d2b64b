"""The DORA counters are read from the DeployJobs' status at scrape time (no in-memory counting),
and the histograms observe what a finished run's Observation says."""

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

from deploybell import metrics
from deploybell.deploy.dora import Observation


def body(name: str, status: dict[str, Any] | None = None, env: str = "") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "creationTimestamp": "2026-11-20T10:00:00Z",
        },
        "spec": {"source": {"environment": env}} if env else {},
        "status": status or {},
    }


def scrape(view: metrics.JobView, *, open_metrics: bool = False) -> str:
    registry = CollectorRegistry()
    registry.register(metrics.DoraCollector(view))
    return (openmetrics if open_metrics else generate_latest)(registry).decode()


TOTALS = {
    "environment": "production",
    "since": "2026-11-21T00:00:00Z",
    "succeeded": 4,
    "failed": 2,
    "canceled": 1,
}


def test_counters_come_from_status_totals() -> None:
    view = metrics.JobView()
    view.seen(body("web", {"totals": TOTALS}))
    text = scrape(view)
    labels = 'deployjob="web",environment="production",namespace="team-a"'
    assert f'deploybell_deployments_total{{{labels},outcome="succeeded"}} 4.0' in text
    assert f'deploybell_deployments_total{{{labels},outcome="failed"}} 2.0' in text
    assert f'deploybell_deployments_total{{{labels},outcome="canceled"}} 1.0' in text
    assert f"deploybell_change_failures_total{{{labels}}} 2.0" in text


def test_scraping_twice_or_from_two_views_gives_the_same_numbers() -> None:
    first, second = metrics.JobView(), metrics.JobView()
    for view in (first, second):
        view.seen(body("web", {"totals": TOTALS}))
    assert scrape(first) == scrape(first) == scrape(second)


def test_a_job_without_outcomes_is_zero_from_its_creation() -> None:
    view = metrics.JobView()
    view.seen(body("new", env="qa"))
    text = scrape(view, open_metrics=True)
    labels = 'deployjob="new",environment="qa",namespace="team-a"'
    assert f'deploybell_deployments_total{{{labels},outcome="succeeded"}} 0.0' in text
    # OpenMetrics _created: the counter's start, so a scraper sees the first run as an increase.
    created = datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp()
    assert f'deploybell_deployments_created{{{labels},outcome="succeeded"}} {created:.7e}' in text


def test_created_is_when_the_environment_started_counting() -> None:
    view = metrics.JobView()
    view.seen(body("web", {"totals": TOTALS}))
    text = scrape(view, open_metrics=True)
    assert 'deploybell_change_failures_created{deployjob="web"' in text
    since = datetime(2026, 11, 21, tzinfo=UTC).timestamp()
    assert f'namespace="team-a"}} {since:.7e}' in text


def test_a_job_gone_is_no_longer_reported() -> None:
    view = metrics.JobView()
    view.seen(body("web", {"totals": TOTALS}))
    view.gone("team-a", "web")
    assert 'deployjob="web"' not in scrape(view)


def test_no_commit_or_run_in_labels() -> None:
    view = metrics.JobView()
    view.seen(body("web", {"totals": TOTALS, "run": 7, "revision": "4f2a9c1e0b7d"}))
    text = scrape(view)
    assert "4f2a9c1e0b7d" not in text
    assert "run=" not in text


def test_observe_fills_the_histograms() -> None:
    before = _count("deploybell_lead_time_seconds_count", "team-obs", "production")
    metrics.observe(Observation("team-obs", "production", "succeeded", 100.0, 9100.0, 3550.0))
    metrics.observe(Observation("team-obs", "production", "failed", 40.0, None, None))
    assert _count("deploybell_lead_time_seconds_count", "team-obs", "production") == before + 1
    assert _count("deploybell_time_to_restore_seconds_count", "team-obs", "production") == 1
    failed = metrics.REGISTRY.get_sample_value(
        "deploybell_deployment_duration_seconds_sum",
        {"namespace": "team-obs", "environment": "production", "outcome": "failed"},
    )
    assert failed == 40.0


def _count(name: str, namespace: str, environment: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        name, {"namespace": namespace, "environment": environment}
    )
    return value or 0.0
