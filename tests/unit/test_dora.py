"""DORA bookkeeping of a run's outcome (deploy/dora): counts, failing streak, history fields and
what the metrics observe, from the status before the outcome and the run's final state."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from deploybell.api.deployjob import MAX_HISTORY, Source, environment_of
from deploybell.api.totals import Totals
from deploybell.deploy.dora import (
    Concluded,
    Observation,
    conclude,
    conclude_unparsed,
    seconds_between,
)
from deploybell.deploy.run import Phase, RunState, push_history

ROOT = Path(__file__).resolve().parents[2]
NS = "team-a"
T0 = "2026-11-20T10:00:00Z"
T1 = "2026-11-20T10:02:30Z"  # the first run ends
T2 = "2026-11-20T11:00:00Z"
T3 = "2026-11-20T11:01:40Z"  # the second run ends
COMMITTED = "2026-11-20T09:30:00+01:00"  # 08:30Z: lead time to T3 is 2h31m40s
PROD = Source(
    repository="https://github.com/acme/web",
    revision="4f2a9c1e0b7d",
    environment="production",
    committed_at=COMMITTED,
)


def ended(phase: Phase, started: str = T2, finished: str = T3, run: int = 2) -> RunState:
    return RunState(run=run, phase=phase, started_at=started, finished_at=finished)


def totals(env: str = "production", s: int = 0, f: int = 0, c: int = 0) -> dict[str, Any]:
    return {"environment": env, "since": T0, "succeeded": s, "failed": f, "canceled": c}


@pytest.mark.parametrize(
    ("status", "phase", "source", "want"),
    [
        pytest.param(
            {},
            Phase.SUCCEEDED,
            PROD,
            Concluded(
                Totals("production", T2, succeeded=1),
                "",
                {"environment": "production", "committedAt": COMMITTED},
                Observation(NS, "production", "succeeded", 100.0, 9100.0, None),
            ),
            id="first-success-with-commit-time",
        ),
        pytest.param(
            {"totals": totals(s=3)},
            Phase.FAILED,
            PROD,
            Concluded(
                Totals("production", T0, succeeded=3, failed=1),
                T3,
                {"environment": "production", "committedAt": COMMITTED},
                Observation(NS, "production", "failed", 100.0, None, None),
            ),
            id="failure-starts-a-streak",
        ),
        pytest.param(
            {"totals": totals(s=3, f=1), "failingSince": T1},
            Phase.FAILED,
            PROD,
            Concluded(
                Totals("production", T0, succeeded=3, failed=2),
                T1,
                {"environment": "production", "committedAt": COMMITTED},
                Observation(NS, "production", "failed", 100.0, None, None),
            ),
            id="second-failure-keeps-the-streak-start",
        ),
        pytest.param(
            {"totals": totals(s=3, f=2), "failingSince": T1},
            Phase.SUCCEEDED,
            PROD,
            Concluded(
                Totals("production", T0, succeeded=4, failed=2),
                "",
                {"environment": "production", "committedAt": COMMITTED, "failingSince": T1},
                Observation(NS, "production", "succeeded", 100.0, 9100.0, 3550.0),
            ),
            id="success-restores",
        ),
        pytest.param(
            {"totals": totals(f=1), "failingSince": T1},
            Phase.CANCELED,
            PROD,
            Concluded(
                Totals("production", T0, failed=1, canceled=1),
                T1,
                {"environment": "production", "committedAt": COMMITTED},
                Observation(NS, "production", "canceled", 100.0, None, None),
            ),
            id="cancel-neither-starts-nor-ends-a-streak",
        ),
        pytest.param(
            {"totals": totals(s=7)},
            Phase.SUCCEEDED,
            None,
            Concluded(
                Totals(NS, T2, succeeded=1),
                "",
                {"environment": NS},
                Observation(NS, NS, "succeeded", 100.0, None, None),
            ),
            id="environment-changed-counts-start-afresh",
        ),
        pytest.param(
            {"totals": totals(env=NS, s=2)},
            Phase.SUCCEEDED,
            Source(revision="4f2a9c1e0b7d"),
            Concluded(
                Totals(NS, T0, succeeded=3),
                "",
                {"environment": NS},
                Observation(NS, NS, "succeeded", 100.0, None, None),
            ),
            id="no-environment-means-the-namespace",
        ),
        pytest.param(
            {"totals": {"environment": "production", "succeeded": "7", "failed": -1}},
            Phase.FAILED,
            PROD,
            Concluded(
                Totals("production", "", failed=1),
                T3,
                {"environment": "production", "committedAt": COMMITTED},
                Observation(NS, "production", "failed", 100.0, None, None),
            ),
            id="garbled-counts-read-as-zero",
        ),
    ],
)
def test_conclude(
    status: dict[str, Any], phase: Phase, source: Source | None, want: Concluded
) -> None:
    assert conclude(status, ended(phase), source, NS) == want


def test_status_fields_clear_failing_since_with_null() -> None:
    got = conclude({"failingSince": T1}, ended(Phase.SUCCEEDED), PROD, NS).status()
    assert got == {
        "totals": {
            "environment": "production",
            "since": T2,
            "succeeded": 1,
            "failed": 0,
            "canceled": 0,
        },
        "failingSince": None,
    }


def test_committed_after_the_success_gives_no_lead_time() -> None:
    future = Source(environment="production", committed_at="2026-11-21T00:00:00Z")
    got = conclude({}, ended(Phase.SUCCEEDED), future, NS)
    assert got.observation.lead_time is None
    assert got.entry == {"environment": "production", "committedAt": "2026-11-21T00:00:00Z"}


def test_an_unfinished_run_is_refused() -> None:
    with pytest.raises(ValueError, match="has not finished"):
        conclude({}, ended(Phase.DEPLOYING), PROD, NS)


def test_a_failed_run_that_never_started_has_no_duration() -> None:
    got = conclude({}, ended(Phase.FAILED, started=""), PROD, NS)
    assert got.observation.duration is None
    assert got.totals.since == T3


@pytest.mark.parametrize(
    ("earlier", "later", "seconds"),
    [
        (T0, T1, 150.0),
        ("2026-11-20T10:00:00.5Z", "2026-11-20T10:00:01Z", 0.5),
        ("2026-11-20T11:00:00+01:00", T0, 0.0),
        (T1, T0, None),
        ("", T0, None),
        ("yesterday", T0, None),
        ("2026-11-20T10:00:00", T0, None),  # no offset: not RFC 3339
    ],
)
def test_seconds_between(earlier: str, later: str, seconds: float | None) -> None:
    assert seconds_between(earlier, later) == seconds


def test_environment_of() -> None:
    assert environment_of(None, NS) == NS
    assert environment_of(Source(), NS) == NS
    assert environment_of(PROD, NS) == "production"


def test_history_entry_carries_the_dora_fields() -> None:
    done = conclude({"failingSince": T1}, ended(Phase.SUCCEEDED), PROD, NS)
    history = push_history([], ended(Phase.SUCCEEDED), 10, done.entry)
    assert history[0]["environment"] == "production"
    assert history[0]["committedAt"] == COMMITTED
    assert history[0]["failingSince"] == T1
    assert history[0]["run"] == 2


def test_the_crd_keeps_as_many_history_entries_as_the_setting_allows() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "deploybell.io_deployjobs.yaml").read_text())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    history = status["properties"]["history"]
    assert history["maxItems"] == MAX_HISTORY
    # The fields dora needs survive the API server's pruning.
    assert {"environment", "committedAt", "failingSince"} <= set(history["items"]["properties"])
    assert {"totals", "failingSince"} <= set(status["properties"])


def test_a_run_whose_spec_could_not_be_read_counts_where_the_job_was_counting() -> None:
    got = conclude_unparsed({"totals": totals(s=3)}, ended(Phase.FAILED), NS)
    assert got.totals == Totals("production", T0, succeeded=3, failed=1)
    assert got.entry == {"environment": "production"}
    first = conclude_unparsed({}, ended(Phase.FAILED), NS)
    assert first.totals == Totals(NS, T2, failed=1)
