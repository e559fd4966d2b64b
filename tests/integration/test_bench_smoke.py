"""`make bench`'s code, end to end with tiny sizes: it produces every figure. Not a benchmark:
nothing here judges the numbers, so a busy machine cannot make it fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bench import report
from bench.cluster import ClusterInfo
from bench.lab import Config
from bench.run import run

from tests.support import operator as operator_support
from tests.support.cluster import ClusterAccess, localcluster

TINY = Config(
    sizes=(2,),
    reps=1,
    kubectl_sample=1,
    idle_seconds=1.0,
    active=1,
    restart_reps=1,
    quiet_seconds=0.5,
    scale_jobs=6,
    flux_sizes=(),  # Flux is built only when the bench runs it (minutes, not make test's)
    profile=False,
)


@pytest.fixture
def no_session_operator() -> Iterator[None]:
    """The bench runs operators of its own: the session's one (if started) pauses meanwhile, so
    that no DeployJob is driven by two operators at once."""
    session = operator_support.SESSION
    paused = session is not None and session.running
    if paused:
        assert session is not None
        assert session.stop() == 0, f"the session operator failed to stop:\n{session.tail()}"
    yield
    if paused:
        assert session is not None
        session.start()


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("crds", "no_session_operator")
def test_bench_produces_every_figure(cluster: ClusterAccess, tmp_path: Path) -> None:
    local = localcluster.Cluster(localcluster.STATE)
    state = local.state if cluster.kubeconfig == local.kubeconfig else None  # the audit log
    config = Config(**{**vars(TINY), "out_dir": tmp_path})

    results = run(config, ClusterInfo(cluster.kubeconfig, cluster.bin_dir, state))

    assert "error" not in results, results["error"]
    figures = results["latency"]["2"]
    for metric in ("detect_ms", "start_ms", "end_to_end_ms", "kubectl_detect_ms"):
        assert figures[metric]["n"] >= 1, metric
        assert figures[metric]["p50"] is not None, metric
    footprint = results["footprint"]
    for phase in ("start", "idle", "active"):
        for process in ("deploybell", "bare"):
            assert footprint[phase][process]["rss_mib"] > 0, (phase, process)
    restart = results["restart"]["summary"]
    assert restart["handling_seconds"] is not None
    assert restart["resent"] is not None
    if state is not None:
        assert figures["writes_per_run"] is not None
        assert footprint["idle"]["api"]["requests_per_minute"] is not None
    scale = results["scale"]
    assert (scale["jobs"], scale["restart"]["resent"]) == (7, 0)
    assert scale["idle"]["deploybell"]["rss_mib"] > 0
    assert "(5) restart" in report.table(results)
    assert "(5b) 7 DeployJobs in place" in report.table(results)
    assert report.write_json(results, tmp_path).exists()
