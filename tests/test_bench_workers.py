"""``gmpflow bench``'s worker-scaling section: real worker processes, released together, finish every job
exactly once and a rate comes out."""

from __future__ import annotations

import pytest

from bench.workers import _database, one_run
from tests.engine_support import BACKENDS, POSTGRES_URL


@pytest.mark.parametrize("job", ["erp", "echo"])
@pytest.mark.parametrize("kind", BACKENDS)
def test_two_worker_processes_run_every_job_once_and_report_a_rate(kind: str, job: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if kind == "postgres":
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL tests need GMPFLOW_TEST_POSTGRES_URL")
        monkeypatch.setenv("GMPFLOW_BENCH_POSTGRES_URL", POSTGRES_URL)
    with _database(kind, 0) as url:
        figures = one_run(url, workers=2, jobs=20, kind=job, timeout=60)
    assert figures["workers"] == 2 and figures["jobs"] == 20 and figures["per_second"] > 0
    assert figures["duplicates"] == 0
    # the ERP stand-in answered each job's order read once: no job ran twice, none was skipped
    assert figures["counterpart_calls"] == (20 if job == "erp" else None)
