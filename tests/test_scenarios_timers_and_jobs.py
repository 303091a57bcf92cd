"""Scenarios: intermediate timers (duration and date), restart survival, service retries and incidents."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from engine.runtime.jobs import CLAIM_BATCH, JobRunner
from engine.states import InstanceStatus, JobState


def test_an_intermediate_duration_timer_waits_its_duration_from_a_variable(flow, deploy, users, clock):
    deploy("timer_duration.bpmn")
    instance = flow.start_instance(users["operator"].actor, "timer_duration", None, {"cure_time": "PT45M"})
    (timer,) = flow.instance_detail(instance.id)["jobs"]
    due = timer.due_at.replace(tzinfo=timezone.utc)
    assert (timer.kind == "timer"
            and abs(due - datetime(2026, 1, 5, 8, 45, tzinfo=timezone.utc)) < timedelta(seconds=1))
    clock.advance(minutes=44)
    assert flow.run_jobs() == 0
    assert flow.status(instance.id) == InstanceStatus.WAITING
    clock.advance(minutes=2)
    assert flow.run_jobs() == 2  # the timer, then the service call it made due
    flow.complete(users["operator"], instance.id, "inspect", {"ok": True})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["logged"] == {"cured": "PT45M"}
    assert flow.path(instance.id)[:3] == ["start", "cure", "log_cure"]


def test_an_intermediate_date_timer_waits_until_its_date(flow, deploy, users, clock):
    deploy("timer_date.bpmn")
    instance = flow.start_instance(users["operator"].actor, "timer_date")
    clock.advance(hours=5, minutes=59)  # 13:59
    assert flow.run_jobs() == 0
    assert flow.status(instance.id) == InstanceStatus.WAITING
    clock.advance(minutes=2)  # 14:01
    assert flow.run_jobs() == 1
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["line_open"] is True


def test_timers_and_pending_jobs_survive_a_restart(flow, deploy, users, clock):
    deploy("restart_survival.bpmn")
    instance = flow.start_instance(users["operator"].actor, "restart_survival", "LOT-R",
                                   {"material": "API-7"})
    kinds = sorted((j.kind, j.state) for j in flow.instance_detail(instance.id)["jobs"])
    assert kinds == [("service", JobState.PENDING), ("timer", JobState.PENDING)]
    flow.restart()  # a new process: nothing in memory, the same database
    assert flow.run_jobs() == 1  # the pending service call
    assert flow.variables(instance.id)["reserved"] == {"material": "API-7"}
    flow.restart()
    clock.advance(hours=2, minutes=1)
    assert flow.run_jobs() == 1  # the timer, set before both restarts
    flow.restart()
    flow.complete(users["operator"], instance.id, "release", {})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED


def test_a_failing_service_call_retries_with_backoff_then_opens_an_incident_that_an_admin_retries(
        flow, deploy, users, clock):
    deploy("service_retry_incident.bpmn")
    instance = flow.start_instance(users["operator"].actor, "service_retry_incident", None, {"fail_times": 3})
    assert flow.run_jobs() == 1  # attempt 1 fails; retry after 1 s
    (job,) = flow.instance_detail(instance.id)["jobs"]
    assert (job.state, job.attempts, job.max_attempts) == (JobState.PENDING, 1, 3)
    assert job.last_error == "ERP unreachable"
    clock.advance(seconds=1)
    assert flow.run_jobs() == 1  # attempt 2 fails; the backoff doubles to 2 s
    clock.advance(seconds=1)
    assert flow.run_jobs() == 0
    clock.advance(seconds=1)
    assert flow.run_jobs() == 1  # attempt 3, the last, fails: an incident
    detail = flow.instance_detail(instance.id)
    assert detail["instance"].status == InstanceStatus.FAILED
    assert [j.state for j in detail["jobs"]] == [JobState.FAILED]
    (incident,) = flow.list_incidents()
    assert (incident.instance_id, incident.element_id, incident.attempts) == (instance.id, "post_to_erp", 3)
    assert len(flow.audit_events(action="job.retry_scheduled")) == 2

    flow.retry_incident(users["admin"].actor, incident.id, "ERP back online after maintenance")
    assert flow.list_incidents() == []
    assert flow.run_jobs() == 1  # attempt 4 succeeds (the operation fails only the first 3)
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    variables = flow.variables(instance.id)
    assert variables["done"] is True
    assert variables["erp"] == {"times": 3, "message": "ERP unreachable"}


def test_two_workers_share_a_burst_of_due_jobs_a_few_at_a_time(flow, deploy, users):
    """A claim takes at most CLAIM_BATCH jobs: a second worker finds work while the first runs its share,
    and no job is claimed by both."""
    deploy("restart_survival.bpmn")
    for n in range(3 * CLAIM_BATCH):
        flow.start_instance(users["operator"].actor, "restart_survival", f"LOT-{n}", {"material": f"API-{n}"})
    engine = flow.current
    first = JobRunner(engine.runtime, engine.registry, timedelta(minutes=5), owner="worker-a")
    second = JobRunner(engine.runtime, engine.registry, timedelta(minutes=5), owner="worker-b")
    taken_by_first, taken_by_second = first.claim(), second.claim()
    assert len(taken_by_first) == len(taken_by_second) == CLAIM_BATCH
    assert not {job.id for job in taken_by_first} & {job.id for job in taken_by_second}
    for job in taken_by_first + taken_by_second:
        (first if job in taken_by_first else second).execute(job)
    assert second.run_once() == CLAIM_BATCH and first.run_once() == 0  # the rest, once
    started = flow.list_instances(key="restart_survival")[0]
    assert len(started) == 3 * CLAIM_BATCH
    assert all(flow.variables(i.id)["reserved"] == {"material": i.business_key.replace("LOT", "API")}
               for i in started)
