"""Build and parse the B2MML V0701 messages gmpflow exchanges (namespace ``http://www.mesa.org/xml/B2MML``).

Every message carries the BODID (business object document id) in its ApplicationArea; gmpflow uses the
idempotency key of the task that sends it, so a receiver applies a repeated message once. Parsing goes
through ``engine.xmlsafe.parse_xml`` (no DTD, no entities, no network, ``MAX_BYTES``) and checks what the
receiver relies on; schema conformance of what gmpflow produces is checked by the tests against the
official schemas, which the project does not ship.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from lxml import etree
from lxml.builder import ElementMaker

from engine.errors import ValidationFailed
from engine.xmlsafe import parse_xml

NS = "http://www.mesa.org/xml/B2MML"
MAX_BYTES = 1_000_000
E = ElementMaker(namespace=NS, nsmap={None: NS})
_N = {"b": NS}
DISPOSITIONS = {"released": "UnRestricted", "quarantined": "Restricted", "rejected": "Closed"}


@dataclass(frozen=True)
class Material:
    product: str
    quantity: float
    unit: str = ""
    use: str = "Consumed"   # B2MML MaterialUse: Consumed, Produced, ...
    lot: str | None = None  # B2MML MaterialLotID: the lot consumed or produced


@dataclass(frozen=True)
class Schedule:
    """One production order sent to the MES (ProcessOperationsSchedule)."""
    bodid: str
    order: str
    product: str
    quantity: float
    unit: str
    start: str                 # ISO date or date-time
    end: str
    operations_definition: str  # the recipe/routing id and version the MES must run, e.g. "TAB-100 v3"
    materials: tuple[Material, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Acknowledgement:
    bodid: str
    original_bodid: str
    accepted: bool
    order: str
    reason: str = ""


@dataclass(frozen=True)
class Performance:
    """Execution results of one order (ProcessOperationsPerformance)."""
    bodid: str
    order: str
    produced: Material
    consumed: tuple[Material, ...] = ()
    start: str = ""
    end: str = ""
    state: str = "Completed"


@dataclass(frozen=True)
class LotDisposition:
    bodid: str
    lot: str
    product: str
    disposition: str           # released, quarantined, rejected
    reason: str = ""


@dataclass(frozen=True)
class OperationsDefinition:
    """A recipe/routing version for the MES (SyncOperationsDefinition)."""
    bodid: str
    id: str
    version: str
    product: str
    description: str = ""
    segments: tuple[str, ...] = ()


# -- helpers -------------------------------------------------------------------------------------------------
def now_utc() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def date_time(value: str) -> str:
    """An xsd:dateTime in UTC from an ISO date or date-time (a bare date is midnight UTC)."""
    if len(value) == 10:
        return date.fromisoformat(value).isoformat() + "T00:00:00Z"
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _number(value: float) -> str:
    return f"{value:g}" if float(value) != int(value) else str(int(value))


def _quantity(quantity: float, unit: str) -> etree._Element:
    q = E.Quantity(E.QuantityString(_number(quantity)), E.DataType("decimal"))
    if unit:
        q.append(E.UnitOfMeasure(unit))
    return q


def _application_area(bodid: str, original: bool = False) -> etree._Element:
    tag = E.OriginalApplicationArea if original else E.ApplicationArea
    return tag(E.Sender(E.LogicalID("gmpflow")), E.CreationDateTime(now_utc()), E.BODID(bodid))


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _parse(data: bytes | str, noun: str) -> etree._Element:
    root = parse_xml(data, source=f"B2MML {noun}", max_bytes=MAX_BYTES)
    if root.tag != f"{{{NS}}}{noun}":
        raise ValidationFailed(f"Expected a B2MML V0701 {noun}, got {etree.QName(root).localname} "
                               f"in namespace {etree.QName(root).namespace or '(none)'}.",
                               code="b2mml_unexpected")
    return root


def _text(node: etree._Element, path: str, *, required: bool = True) -> str:
    found = node.find(path, _N)
    if found is None or not (found.text or "").strip():
        if required:
            raise ValidationFailed(f"The B2MML message lacks {path.replace('b:', '')}.", code="b2mml_invalid",
                                   errors={path.replace("b:", ""): "required"})
        return ""
    return found.text.strip()


def message_kind(data: bytes | str) -> str:
    """The noun of a message (``ProcessOperationsSchedule``...), after the safe parse."""
    root = parse_xml(data, source="B2MML message", max_bytes=MAX_BYTES)
    if etree.QName(root).namespace != NS:
        raise ValidationFailed("Not a B2MML V0701 message (wrong namespace).", code="b2mml_unexpected")
    return etree.QName(root).localname


def bodid_of(data: bytes | str) -> str:
    root = parse_xml(data, source="B2MML message", max_bytes=MAX_BYTES)
    return _text(root, "b:ApplicationArea/b:BODID")


def _materials(materials: tuple[Material, ...], tag: Any, prefix: str) -> list[etree._Element]:
    return [tag(E.ID(f"{prefix}{i}"), E.MaterialDefinitionID(m.product),
                *([E.MaterialLotID(m.lot)] if m.lot else []), E.MaterialUse(m.use),
                _quantity(m.quantity, m.unit)) for i, m in enumerate(materials, 1)]


def _read_materials(node: etree._Element, tag: str) -> tuple[Material, ...]:
    return tuple(Material(_text(m, "b:MaterialDefinitionID"), float(_text(m, "b:Quantity/b:QuantityString")),
                          _text(m, "b:Quantity/b:UnitOfMeasure", required=False),
                          _text(m, "b:MaterialUse", required=False) or "Consumed",
                          _text(m, "b:MaterialLotID", required=False) or None)
                 for m in node.iterfind(f".//b:{tag}", _N))


# -- ProcessOperationsSchedule / AcknowledgeOperationsSchedule -----------------------------------------------
def _operations_schedule(s: Schedule) -> etree._Element:
    materials = (Material(s.product, s.quantity, s.unit, "Produced"), *s.materials)
    return E.OperationsSchedule(
        E.ID(s.order), *([E.Description(s.description)] if s.description else []),
        E.StartTime(date_time(s.start)), E.EndTime(date_time(s.end)), E.OperationsType("Production"),
        E.ScheduleState("Released"),
        E.OperationsRequest(
            E.ID(s.order), E.StartTime(date_time(s.start)), E.EndTime(date_time(s.end)),
            E.OperationsType("Production"), E.RequestState("Released"),
            E.OperationsDefinitionID(s.operations_definition),
            E.SegmentRequirement(
                E.ID(f"{s.order}-1"), E.EarliestStartTime(date_time(s.start)),
                E.LatestEndTime(date_time(s.end)),
                E.ProcessSegmentID("Production"), E.OperationsDefinitionID(s.operations_definition),
                E.OperationsSegmentID(s.operations_definition),
                *_materials(materials, E.MaterialRequirement, "M"))))


def build_schedule(s: Schedule) -> bytes:
    return _serialize(E.ProcessOperationsSchedule(
        _application_area(s.bodid), E.DataArea(E.Process(), _operations_schedule(s)), releaseID="7.0.1"))


def _read_schedule(node: etree._Element, bodid: str) -> Schedule:
    request = node.find("b:OperationsRequest", _N)
    if request is None:
        raise ValidationFailed("The OperationsSchedule has no OperationsRequest.", code="b2mml_invalid")
    materials = _read_materials(request, "MaterialRequirement")
    produced = [m for m in materials if m.use == "Produced"]
    if not produced:
        raise ValidationFailed("The schedule names no produced material.", code="b2mml_invalid")
    return Schedule(bodid, _text(node, "b:ID"), produced[0].product, produced[0].quantity, produced[0].unit,
                    _text(request, "b:StartTime"), _text(request, "b:EndTime"),
                    _text(request, "b:OperationsDefinitionID"),
                    tuple(m for m in materials if m.use != "Produced"),
                    _text(node, "b:Description", required=False))


def parse_schedule(data: bytes | str) -> Schedule:
    root = _parse(data, "ProcessOperationsSchedule")
    return _read_schedule(root.find("b:DataArea/b:OperationsSchedule", _N),
                          _text(root, "b:ApplicationArea/b:BODID"))


def build_acknowledgement(schedule: Schedule, bodid: str, *, accepted: bool = True,
                          reason: str = "") -> bytes:
    criteria = E.ResponseCriteria(E.ResponseExpression("Accepted" if accepted else "Rejected",
                                                       actionCode="Accepted" if accepted else "Rejected"))
    if reason:
        criteria.append(E.ChangeStatus(E.Code("Accepted" if accepted else "Rejected"), E.Description(reason)))
    return _serialize(E.AcknowledgeOperationsSchedule(
        _application_area(bodid),
        E.DataArea(E.Acknowledge(_application_area(schedule.bodid, original=True), criteria),
                   _operations_schedule(schedule)), releaseID="7.0.1"))


def parse_acknowledgement(data: bytes | str) -> Acknowledgement:
    root = _parse(data, "AcknowledgeOperationsSchedule")
    ack = root.find("b:DataArea/b:Acknowledge", _N)
    if ack is None:
        raise ValidationFailed("The acknowledgement has no Acknowledge verb.", code="b2mml_invalid")
    expression = ack.find("b:ResponseCriteria/b:ResponseExpression", _N)
    code = expression.get("actionCode") if expression is not None else None
    return Acknowledgement(_text(root, "b:ApplicationArea/b:BODID"),
                           _text(ack, "b:OriginalApplicationArea/b:BODID"), code == "Accepted",
                           _text(root, "b:DataArea/b:OperationsSchedule/b:ID"),
                           _text(ack, "b:ResponseCriteria/b:ChangeStatus/b:Description", required=False))


# -- ProcessOperationsPerformance ----------------------------------------------------------------------------
def build_performance(p: Performance) -> bytes:
    actuals = (p.produced, *p.consumed)
    times = (([E.StartTime(date_time(p.start))] if p.start else [])
             + ([E.Endtime(date_time(p.end))] if p.end else []))
    return _serialize(E.ProcessOperationsPerformance(
        _application_area(p.bodid),
        E.DataArea(E.Process(), E.OperationsPerformance(
            E.ID(p.order), *times, E.OperationsType("Production"),  # V0701 spells it Endtime
            E.OperationsScheduleID(p.order), E.PerformanceState(p.state),
            E.OperationsResponse(
                E.ID(p.order), E.OperationsType("Production"), E.OperationsRequestID(p.order),
                E.ResponseState(p.state),
                E.SegmentResponse(E.ID(f"{p.order}-1"), E.ProcessSegmentID("Production"),
                                  E.SegmentState(p.state), *_materials(actuals, E.MaterialActual, "A"))))),
        releaseID="7.0.1"))


def parse_performance(data: bytes | str) -> Performance:
    root = _parse(data, "ProcessOperationsPerformance")
    perf = root.find("b:DataArea/b:OperationsPerformance", _N)
    if perf is None:
        raise ValidationFailed("The message has no OperationsPerformance.", code="b2mml_invalid")
    actuals = _read_materials(perf, "MaterialActual")
    produced = [m for m in actuals if m.use == "Produced"]
    if len(produced) != 1:
        raise ValidationFailed("The performance must report exactly one produced material.",
                               code="b2mml_invalid")
    return Performance(_text(root, "b:ApplicationArea/b:BODID"), _text(perf, "b:ID"), produced[0],
                       tuple(m for m in actuals if m.use != "Produced"),
                       _text(perf, "b:StartTime", required=False), _text(perf, "b:Endtime", required=False),
                       _text(perf, "b:PerformanceState", required=False))


# -- SyncMaterialLot -----------------------------------------------------------------------------------------
def build_lot_disposition(d: LotDisposition) -> bytes:
    if d.disposition not in DISPOSITIONS:
        raise ValidationFailed(f"Unknown disposition '{d.disposition}'.", code="b2mml_invalid")
    change = E.ChangeStatus(E.Code(d.disposition.capitalize()),
                            *([E.Description(d.reason)] if d.reason else []))
    return _serialize(E.SyncMaterialLot(
        _application_area(d.bodid),
        E.DataArea(E.Sync(E.ActionCriteria(E.ActionExpression(actionCode="Change"), change)),
                   E.MaterialLot(E.ID(d.lot), E.MaterialDefinitionID(d.product),
                                 E.Status(d.disposition.capitalize()),
                                 E.Disposition(DISPOSITIONS[d.disposition]))), releaseID="7.0.1"))


def parse_lot_disposition(data: bytes | str) -> LotDisposition:
    root = _parse(data, "SyncMaterialLot")
    lot = root.find("b:DataArea/b:MaterialLot", _N)
    if lot is None:
        raise ValidationFailed("The message has no MaterialLot.", code="b2mml_invalid")
    status = _text(lot, "b:Status").lower()
    if status not in DISPOSITIONS:
        raise ValidationFailed(f"Unknown lot status '{status}'.", code="b2mml_invalid")
    return LotDisposition(_text(root, "b:ApplicationArea/b:BODID"), _text(lot, "b:ID"),
                          _text(lot, "b:MaterialDefinitionID"), status,
                          _text(root, "b:DataArea/b:Sync/b:ActionCriteria/b:ChangeStatus/b:Description",
                                required=False))


# -- SyncOperationsDefinition --------------------------------------------------------------------------------
def build_operations_definition(d: OperationsDefinition) -> bytes:
    segments = [E.OperationsSegment(E.ID(s), E.OperationsType("Production")) for s in d.segments]
    definition = E.OperationsDefinition(
        E.ID(d.id), *([E.Description(d.description)] if d.description else []), E.Version(d.version),
        E.OperationsType("Production"), *segments, E.BillOfMaterialsID(d.product))
    return _serialize(E.SyncOperationsDefinition(
        _application_area(d.bodid),
        E.DataArea(E.Sync(E.ActionCriteria(E.ActionExpression(actionCode="Replaced"))), definition),
        releaseID="7.0.1"))


def parse_operations_definition(data: bytes | str) -> OperationsDefinition:
    root = _parse(data, "SyncOperationsDefinition")
    d = root.find("b:DataArea/b:OperationsDefinition", _N)
    if d is None:
        raise ValidationFailed("The message has no OperationsDefinition.", code="b2mml_invalid")
    return OperationsDefinition(_text(root, "b:ApplicationArea/b:BODID"), _text(d, "b:ID"),
                                _text(d, "b:Version"), _text(d, "b:BillOfMaterialsID"),
                                _text(d, "b:Description", required=False),
                                tuple(_text(s, "b:ID") for s in d.iterfind("b:OperationsSegment", _N)))
