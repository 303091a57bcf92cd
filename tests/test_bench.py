"""``gmpflow bench``'s approval and loop sections on small counts: every instance it times completes, the
naive reference really persists every step, the loop runs to its end, and the step cost it reports is the
median of the steps around the probed one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from bench.core import around, engine_throughput, loop_step_costs, raw_spiff_throughput, render_table


def test_every_timed_approval_completes_through_the_engine_and_in_raw_spiffworkflow() -> None:
    engine = engine_throughput(3)
    assert engine["completed"] == 3 + 5  # the timed instances and the warm-up's
    assert engine["per_second"] > 0 and raw_spiff_throughput(3)["per_second"] > 0


def test_naive_persistence_writes_the_whole_workflow_with_its_spec_after_every_step(tmp_path: Path) -> None:
    path = tmp_path / "naive.db"
    assert raw_spiff_throughput(3, persist_to=str(path))["per_second"] > 0
    with sqlite3.connect(path) as connection:
        states = [json.loads(state) for state, in connection.execute("SELECT state FROM workflow")]
    assert len(states) == 3 + 5  # the timed instances and the warm-up's, each its own row
    assert all(state["spec"]["name"] == "demo_approval" and state["completed"] for state in states)


def test_a_loop_of_many_iterations_runs_to_its_end() -> None:
    figures = loop_step_costs(steps=40, probes=(10, 40))
    assert figures["final_status"] == "completed"
    assert figures["step_10_ms"] > 0 and figures["step_40_ms"] > 0


def test_a_step_cost_is_the_median_of_the_steps_nearest_the_probe() -> None:
    timings = {n: float(n) for n in range(1, 101)}
    timings[50] = 10_000.0  # one step slowed down by a neighbour on the machine does not move it
    assert around(timings, 50, width=5) == 51.0  # steps 48..52, one of them an outlier
    assert around(timings, 100, width=5) == 98.0  # the last steps: 96..100


def test_the_table_names_the_target() -> None:
    figures = {"approval_engine": {"per_second": 100.0, "instances": 200, "rounds": [90.0, 100.0, 95.0]},
               "approval_raw_spiffworkflow": {"per_second": 400.0, "rounds": [400.0, 380.0, 390.0]},
               "engine_to_raw_ratio": 0.25,
               "approval_naive_persistence": {"per_second": 150.0, "rounds": [150.0, 140.0, 120.0]},
               "naive_to_raw_ratio": 0.375,
               "loop": {"step_10_ms": 1.0, "step_1000_ms": 2.0, "ratio_1000_to_10": 2.0},
               "peak_rss_mb": 100.0}
    table = render_table(figures)
    assert "0.250 (target >= 0.333)" in table and "best of [90.0, 100.0, 95.0]" in table
    assert "naive / raw" in table and "0.375" in table


def test_the_headline_figures_are_flat_keys_read_as_written_and_numbers() -> None:
    """``gmpflow bench --json`` carries the keys of DESIGN.md as flat names beside the nested sections;
    here from each section run small (the HTTP one against a real ``gmpflow run`` on 127.0.0.1)."""
    from bench.core import CLIENTS_4_HEADLINE, HEADLINES, POSTGRES_HEADLINE, headlines, naive_throughput
    from bench.http import http_run

    figures = {"approval_engine": {**engine_throughput(3), "rounds": [1.0]},
               "approval_raw_spiffworkflow": {**raw_spiff_throughput(3), "rounds": [1.0]},
               "engine_to_raw_ratio": 0.5,
               "approval_naive_persistence": {**naive_throughput(3), "rounds": [1.0]},
               "naive_to_raw_ratio": 0.5,
               "http": http_run(instances=3, warmup=1),
               "loop": loop_step_costs(steps=40, probes=(10, 1000)),  # "1000": the last steps here
               "peak_rss_mb": 1.0}
    figures.update(headlines(figures))
    printed = json.loads(json.dumps(figures))
    for key in HEADLINES:
        assert isinstance(printed[key], (int, float)) and not isinstance(printed[key], bool), key
    assert printed["http"]["instances"] == 3 and POSTGRES_HEADLINE not in printed
    assert "engine / naive" in render_table(figures) and "over HTTP" in render_table(figures)
    assert CLIENTS_4_HEADLINE not in printed

    figures["http_4_clients"] = http_run(instances=4, warmup=1, clients=4)
    assert figures["http_4_clients"]["clients"] == 4
    assert headlines(figures)[CLIENTS_4_HEADLINE] == figures["http_4_clients"]["instances_per_s"] > 0
    assert "four clients at once" in render_table(figures)

    figures["worker_scaling"] = {"postgres": [{"workers": 1, "per_second": 10.0},
                                              {"workers": 2, "per_second": 18.0},
                                              {"workers": 4, "per_second": 30.0}]}
    assert headlines(figures)[POSTGRES_HEADLINE] == 3.0
