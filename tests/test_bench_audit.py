"""The audit-query benchmark fills a chained trail that verifies, and times every filter."""

from bench.audit import audit_query_costs


def test_the_audit_benchmark_builds_a_valid_chain_and_reports_each_filter():
    figures = audit_query_costs(3000)
    assert figures["verify_ok"] is True
    assert figures["events"] == 3000
    for name in ("by_object_ms", "by_actor_ms", "by_action_ms", "by_time_range_ms", "by_actor_page_100_ms"):
        assert figures[name] >= 0
