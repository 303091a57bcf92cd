"""``gmpflow bench``'s SOP section: a short SOP runs step by step, each step its own instance, and figures
come out."""

from bench.sop import sop_step_costs


def test_the_sop_benchmark_runs_every_step_as_its_own_instance() -> None:
    figures = sop_step_costs(12, (2, 12))
    assert figures["completed_step_instances"] == 12
    assert figures["batch_waiting_for_yield"] is True
    assert figures["step_2_ms"] > 0 and figures["step_12_ms"] > 0 and figures["ratio_12_to_2"] > 0
