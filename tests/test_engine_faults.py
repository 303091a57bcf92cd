"""Engine faults found by running public models (issue 18), each driven with save-and-reload between steps
(``flow`` runs every test twice: once cached, once with a fresh engine before each call): an event subprocess
still starts after a reload; a message with BPMN correlation keys is delivered by them; a task that does not
write the data output it declares fails visibly with the element named, never as a server error; an
instance whose every branch waits reports ``waiting``."""

from __future__ import annotations

import pytest

from engine.errors import GmpflowError
from engine.states import InstanceStatus, MessageStatus


def test_an_event_subprocess_starts_on_its_message_after_the_instance_was_saved_and_reloaded(flow, deploy,
                                                                                                users):
    deploy("event_subprocess_message.bpmn")
    instance = flow.start_instance(users["operator"].actor, "event_subprocess_message", "B-1")
    assert flow.status(instance.id) == InstanceStatus.WAITING
    result = flow.correlate(users["supervisor"].actor, "hold_requested", {"business_key": "B-1"},
                            {"reason": "pressure drop"})
    assert result == {"status": MessageStatus.MATCHED, "instance_id": instance.id}
    assert flow.open_elements(users["admin"], instance.id) == ["assess_hold", "granulate"]
    flow.complete(users["supervisor"], instance.id, "assess_hold", {})
    flow.complete(users["operator"], instance.id, "granulate", {})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED


def test_an_event_subprocess_that_ran_in_one_instance_does_not_start_in_the_next(flow, deploy, users):
    deploy("event_subprocess_message.bpmn")
    first = flow.start_instance(users["operator"].actor, "event_subprocess_message", "B-1")
    flow.correlate(users["supervisor"].actor, "hold_requested", {"business_key": "B-1"}, {"reason": "leak"})
    second = flow.start_instance(users["operator"].actor, "event_subprocess_message", "B-2")
    assert flow.open_elements(users["admin"], second.id) == ["granulate"]
    flow.complete(users["operator"], second.id, "granulate", {})
    assert flow.status(second.id) == InstanceStatus.COMPLETED  # no hold was requested: nothing waits for one
    assert flow.open_elements(users["admin"], first.id) == ["assess_hold", "granulate"]


def test_a_message_with_correlation_keys_reaches_the_instance_whose_key_matches(flow, deploy, users):
    deploy("message_correlation_key.bpmn")
    instance = flow.start_instance(users["operator"].actor, "message_correlation_key", "S-7")
    assert flow.status(instance.id) == InstanceStatus.WAITING
    result = flow.correlate(users["qa"].actor, "lab_result", {"business_key": "S-7"},
                            {"sample_id": "S-7", "assay": 99.1})
    assert result == {"status": MessageStatus.MATCHED, "instance_id": instance.id}
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
    assert flow.variables(instance.id)["result"] == {"sample_id": "S-7", "assay": 99.1}


@pytest.mark.parametrize("model,variables,element", [
    ("data_output_missing", {"measured": False}, "measure"),
    ("mi_output_missing", {"drums": ["D-1", "D-2"]}, "weigh"),
])
def test_a_missing_data_output_fails_with_the_element_named_not_a_server_error(flow, deploy, users, model,
                                                                                variables, element):
    deploy(f"{model}.bpmn")
    with pytest.raises(GmpflowError) as failed:
        flow.start_instance(users["admin"].actor, model, "X-1", variables)
    assert failed.value.code == "data_output_missing"
    assert failed.value.context["element_id"] == element


def test_a_completion_that_leaves_a_declared_output_unwritten_is_refused_by_name_and_the_task_stays_open(
        flow, deploy, users):
    deploy("user_output_missing.bpmn")
    instance = flow.start_instance(users["admin"].actor, "user_output_missing", "R-1")
    with pytest.raises(GmpflowError) as failed:
        flow.complete(users["operator"], instance.id, "record", {"comment": "no reading taken"})
    assert (failed.value.code, failed.value.context["element_id"]) == ("data_output_missing", "record")
    assert "'reading'" in failed.value.message
    assert flow.open_elements(users["operator"], instance.id) == ["record"]
    flow.complete(users["operator"], instance.id, "record", {"reading": 7})
    assert flow.status(instance.id) == InstanceStatus.COMPLETED


def test_an_instance_whose_service_call_waits_for_its_retry_reports_waiting(flow, deploy, users, clock):
    deploy("service_retry_incident.bpmn")
    instance = flow.start_instance(users["operator"].actor, "service_retry_incident", None, {"fail_times": 1})
    assert flow.status(instance.id) == InstanceStatus.RUNNING  # the call is due now
    assert flow.run_jobs() == 1  # it fails; the retry is due in a second
    assert flow.status(instance.id) == InstanceStatus.WAITING
    clock.advance(seconds=1)
    assert flow.run_jobs() == 1
    assert flow.status(instance.id) == InstanceStatus.COMPLETED
