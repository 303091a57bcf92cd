"""B2MML V0701 messages: every message gmpflow builds validates against the official schemas, parses back
to what was built, and hostile or foreign XML is refused before anything reads it."""

from __future__ import annotations

import pytest

from connectors.b2mml import messages as m
from engine.errors import DefinitionError, UnsafeXml, ValidationFailed
from tests.b2mml_schema import assert_valid

SCHEDULE = m.Schedule(
    bodid="task-3f2a", order="MO-0042", product="TAB-100", quantity=100000, unit="u",
    start="2026-12-01", end="2026-12-02T18:00:00+01:00", operations_definition="TAB-100 recipe v3",
    materials=(m.Material("API-001", 50.5, "kg"), m.Material("EXC-002", 30, "kg")),
    description="Paracetamol 500 mg, batch for EU market")
PERFORMANCE = m.Performance(
    bodid="mes-991", order="MO-0042", produced=m.Material("TAB-100", 98500, "u", "Produced"),
    consumed=(m.Material("API-001", 50.1, "kg"), m.Material("EXC-002", 29.7, "kg")),
    start="2026-12-01T06:00:00Z", end="2026-12-02T17:10:00Z")
WITH_LOTS = m.Performance(  # the lots consumed and the lot produced, as B2MML MaterialLotID
    bodid="mes-992", order="MO-0043", produced=m.Material("TAB-100", 98500, "u", "Produced", "L-B-43"),
    consumed=(m.Material("API-001", 30.0, "kg", "Consumed", "L-API-7"),
              m.Material("API-001", 20.1, "kg", "Consumed", "L-API-8"), m.Material("EXC-002", 29.7, "kg")),
    start="2026-12-01T06:00:00Z", end="2026-12-02T17:10:00Z")
LOT = m.LotDisposition(bodid="task-77", lot="L-2026-001", product="TAB-100", disposition="quarantined",
                       reason="OOS dissolution, investigation DEV-12")
DEFINITION = m.OperationsDefinition(bodid="task-cc1", id="TAB-100 recipe", version="3", product="TAB-100",
                                    description="Granulate, compress, coat",
                                    segments=("GRAN", "COMP", "COAT"))

BUILT = {
    "ProcessOperationsSchedule": lambda: m.build_schedule(SCHEDULE),
    "AcknowledgeOperationsSchedule": lambda: m.build_acknowledgement(SCHEDULE, "mes-ack-1"),
    "AcknowledgeOperationsSchedule-rejected": lambda: m.build_acknowledgement(SCHEDULE, "mes-ack-2",
                                                                                accepted=False,
                                                                                reason="unknown recipe"),
    "ProcessOperationsPerformance": lambda: m.build_performance(PERFORMANCE),
    "ProcessOperationsPerformance-lots": lambda: m.build_performance(WITH_LOTS),
    "SyncMaterialLot": lambda: m.build_lot_disposition(LOT),
    "SyncOperationsDefinition": lambda: m.build_operations_definition(DEFINITION),
}


@pytest.mark.parametrize("kind", BUILT)
def test_every_message_gmpflow_builds_is_valid_b2mml_v0701(b2mml_schema, kind) -> None:
    assert_valid(b2mml_schema, BUILT[kind]())


@pytest.mark.parametrize("disposition", sorted(m.DISPOSITIONS))
def test_every_lot_disposition_is_valid_b2mml(b2mml_schema, disposition) -> None:
    assert_valid(b2mml_schema, m.build_lot_disposition(m.LotDisposition("b", "L1", "P", disposition)))


def test_a_schedule_parses_back_to_the_order_with_dates_as_utc_date_times() -> None:
    parsed = m.parse_schedule(m.build_schedule(SCHEDULE))
    assert (parsed.bodid, parsed.order, parsed.product, parsed.quantity) == (
        "task-3f2a", "MO-0042", "TAB-100", 100000)
    assert (parsed.start, parsed.end) == ("2026-12-01T00:00:00Z", "2026-12-02T17:00:00Z")
    assert parsed.operations_definition == "TAB-100 recipe v3"
    assert parsed.materials == SCHEDULE.materials


def test_the_acknowledgement_names_the_schedule_message_it_answers() -> None:
    ack = m.parse_acknowledgement(m.build_acknowledgement(SCHEDULE, "mes-ack-1"))
    assert (ack.bodid, ack.original_bodid, ack.accepted, ack.order) == ("mes-ack-1", "task-3f2a", True,
                                                                        "MO-0042")
    refused = m.parse_acknowledgement(m.build_acknowledgement(SCHEDULE, "x", accepted=False,
                                                              reason="unknown recipe"))
    assert (refused.accepted, refused.reason) == (False, "unknown recipe")


def test_performance_carries_produced_quantity_consumed_materials_and_the_v0701_endtime() -> None:
    xml = m.build_performance(PERFORMANCE)
    assert b"<Endtime>" in xml and b"<EndTime>" not in xml.split(b"OperationsResponse")[0]
    assert m.parse_performance(xml) == m.Performance(
        "mes-991", "MO-0042", PERFORMANCE.produced, PERFORMANCE.consumed, "2026-12-01T06:00:00Z",
        "2026-12-02T17:10:00Z", "Completed")


def test_lot_disposition_and_operations_definition_parse_back() -> None:
    assert m.parse_lot_disposition(m.build_lot_disposition(LOT)) == LOT
    assert m.parse_operations_definition(m.build_operations_definition(DEFINITION)) == DEFINITION


def test_the_bodid_is_the_message_id_a_receiver_deduplicates_on() -> None:
    assert m.bodid_of(m.build_schedule(SCHEDULE)) == "task-3f2a"
    assert m.message_kind(m.build_lot_disposition(LOT)) == "SyncMaterialLot"


HOSTILE = {
    "xxe": b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<ProcessOperationsSchedule xmlns="http://www.mesa.org/xml/B2MML">&x;</ProcessOperationsSchedule>',
    "billion-laughs": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                      b'<ProcessOperationsSchedule xmlns="http://www.mesa.org/xml/B2MML">&b;'
                      b'</ProcessOperationsSchedule>',
    "oversize": b'<ProcessOperationsSchedule xmlns="http://www.mesa.org/xml/B2MML">'
                + b"<!-- padding -->" * (m.MAX_BYTES // 16 + 1) + b"</ProcessOperationsSchedule>",
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_xml_is_refused_with_a_clear_error(case) -> None:
    with pytest.raises(UnsafeXml) as err:
        m.parse_schedule(HOSTILE[case])
    assert err.value.code in ("xml_forbidden", "xml_too_large")


def test_a_message_of_another_kind_or_namespace_is_refused() -> None:
    with pytest.raises(ValidationFailed) as err:
        m.parse_schedule(m.build_lot_disposition(LOT))
    assert err.value.code == "b2mml_unexpected"
    with pytest.raises(ValidationFailed):
        m.parse_schedule(b"<ProcessOperationsSchedule/>")
    with pytest.raises(DefinitionError):
        m.parse_schedule(b"<ProcessOperationsSchedule")


def test_a_schedule_without_its_order_id_names_what_is_missing() -> None:
    xml = m.build_schedule(SCHEDULE).replace(b"<ID>MO-0042</ID>", b"<ID></ID>", 1)
    with pytest.raises(ValidationFailed) as err:
        m.parse_schedule(xml)
    assert "ID" in err.value.message


def test_performance_names_each_lot_consumed_and_the_lot_produced() -> None:
    assert m.parse_performance(m.build_performance(WITH_LOTS)) == WITH_LOTS
