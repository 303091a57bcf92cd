"""``gmpflow bench --load`` in small: 5 simulated operators, 200 requests against gunicorn on 127.0.0.1
(SQLite), then 400 requests of the memory run. Zero errors, and every figure is produced."""

from __future__ import annotations

from click.testing import CliRunner

from bench import load as bench_load
from bench.load import load_run, render_load
from bench.workers import _database
from engine.cli import main


def test_a_small_load_run_answers_every_request_and_produces_the_figures(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with _database("sqlite", 0) as url:
        figures = load_run(url, operators=5, cycles=10, seconds=60, memory_requests=400, memory_warmup=100,
                           workers=2, threads=4)
    assert figures["errors"] == 0, figures["error_samples"]
    assert figures["requests"] == 200 and figures["completions"] == 50
    assert figures["requests_per_second"] > 0
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        assert 0 < figures["completion"][name] <= figures["completion"]["max_ms"]
    memory = figures["memory"]
    assert memory["errors"] == 0 and memory["requests"] == 400
    assert memory["rss_first_kb"] > 0 and memory["rss_last_kb"] > 0 and "growth_kb" in memory
    text = render_load({"sqlite": figures})
    assert "requests/s" in text and "p99" in text and "errors 0" in text and "growth" in text
    print("\n" + text)

    # the command line option runs the same (here without a database of its own to load)
    monkeypatch.setattr(bench_load, "load_bench", lambda: {"sqlite": figures})
    result = CliRunner().invoke(main, ["bench", "--load"])
    assert result.exit_code == 0 and result.output.strip() == text
