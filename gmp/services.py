"""The GMP pack's services: batch review and record, step screen, material lots and genealogy, the equipment
logbook. Callers ask the engine for them by type, ``engine.pack(GmpServices).create_lot(...)``
(``Gmpflow.pack``; the pack's ``gmpflow_services`` hook in ``gmp.pack`` offers them); each is one unit of work
(or a read) on the engine's database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine import access, authority
from engine.audit import Actor
from engine.errors import EntryRefused, NotFound, ValidationFailed
from engine.identity import Principal
from engine.request_context import Caller, as_request
from engine.runtime import rows, tasks
from gmp import batch_disposition, batch_record, equipment_log, genealogy, lots, step_screen

if TYPE_CHECKING:
    from engine.services import Gmpflow


class GmpServices:
    """What the web app, the CLI and the tests ask of the GMP content, bound to one engine."""

    def __init__(self, engine: Gmpflow) -> None:
        self.engine = engine

    # -- batch review and record (gmp.batch_record) ------------------------------------------------------
    def batch_review(self, principal: Principal, batch_id: str) -> dict[str, Any]:
        """The batch review screen: the electronic batch record (exceptions, steps, deviations, audit trail;
        see ``gmp.batch_record``) and the open tasks of its release that ``principal`` may see (the release
        decision is taken and signed on its task page)."""
        record = batch_record.build(self.engine, batch_id)
        with self.engine.db.query() as db:
            open_tasks = [t for i in record["release"]["instance_ids"] for t in tasks.inbox(db, principal,
                                                                                             instance_id=i)]
        return {"record": record, "open_tasks": open_tasks}

    def batch_overview(self, batch_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Batch id → ``{status, locked, events}``: its dispositions and reopens (see
        ``gmp.batch_disposition``)."""
        with self.engine.db.read() as session:
            return batch_disposition.overview(session, self.engine.specs, batch_ids)

    def batch_record(self, batch_id: str, fmt: str = "json", reader: Principal | None = None
                     ) -> dict[str, Any] | str | bytes:
        """The electronic batch record of a batch (``gmp.batch_record``): ``json`` (a dict), ``html``,
        ``pdf``; ``not_permitted`` unless ``reader`` reads every record or took part in the batch."""
        record = batch_record.build(self.engine, batch_id)
        if not access.reads_every_record(reader):
            ids = [record["execution"]["instance_id"], *record["release"]["instance_ids"],
                   *[s["instance_id"] for s in record["steps"] if s.get("instance_id")]]
            with self.engine.db.read() as session:
                access.check_instances(session, reader, ids, "the record of this batch")
        if fmt == "html":
            return batch_record.to_html(record)
        if fmt == "pdf":
            return batch_record.to_pdf(record)
        return record


    def step_screen(self, principal: Principal, task_id: int) -> dict[str, Any]:
        """What the EBR step screen of an open SOP step task shows: the step and its pick lists
        (``gmp.step_screen.options``); the task must be one the principal may see."""
        step = self.engine.task_view(principal, task_id)["inputs"].get("step") or {}
        return {"step": step, **step_screen.options(self.engine, step)}

    def check_step_entry(self, principal: Principal, task_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """A dry run of the step's entry as typed so far (``gmp.step_screen.preview``): nothing stored."""
        inputs = self.engine.task_view(principal, task_id)["inputs"]
        return step_screen.preview(self.engine, inputs.get("step") or {}, data, principal.username,
                                   batch_id=inputs.get("batch_id"),
                                   product=(inputs.get("batch") or {}).get("product"))


    # -- material lots (gmp.lots) -------------------------------------------------------------------
    def create_lot(self, caller: Caller, data: dict[str, Any], *,
                   released_by_init: bool = False) -> dict[str, Any]:
        """Receive a lot in quarantine and start its ``lot_disposition`` instance (business key = lot id, the
        engine's identity) in the same transaction, for the caller's request (``as_request``): the lot, its
        history, the start and their audit events carry the request's time and correlation id. A signed-in
        principal needs a role of ``lots.CREATORS`` (``not_permitted``, audited). ``released_by_init``:
        ``gmpflow init --demo`` only, a lot stored released without a disposition, its audit event saying
        so."""
        context = as_request(caller, self.engine.clock)
        actor, now = context.actor, context.at
        if context.principal is not None:
            with authority.refusals(self.engine.db, context):
                lots.check_creator(context.principal, data.get("lot_id"))
        fields = lots.validated(data)
        with self.engine.db.transaction(context.correlation_id) as uow:
            if released_by_init:
                lot = lots.insert(uow.session, actor, fields, now, status=lots.LotStatus.RELEASED,
                                  reason="bootstrap demo data: stored released by gmpflow init, "
                                         "no disposition")
                return lots.view(lot, now.date(), [])
            lot = lots.insert(uow.session, actor, fields, now)
            dep = rows.latest_active(uow.db, lots.PROCESS)
            live = self.engine.runtime.create(uow, dep, lot.lot_id, {"lot_id": lot.lot_id, "lot": fields},
                                              Actor.system(), at=now)
            lot.disposition_instance_id = live.row.id
            uow.session.flush()
            result = lots.view(lot, now.date())
        self.engine.runtime.remember_created(uow)
        return result

    def list_lots(self, material: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        with self.engine.db.read() as session:
            return lots.listing(session, self.engine.clock.now().date(), material, status)

    def get_lot(self, lot_id: str) -> dict[str, Any]:
        """The lot as read now, with its history (created, status changes, consumptions); NotFound."""
        with self.engine.db.read() as session:
            lot = session.get(lots.Lot, lot_id)
            if lot is None:
                raise NotFound(f"There is no lot {lot_id}.", code="lot_not_found")
            return lots.view(lot, self.engine.clock.now().date(), lots.history(session, lot_id))

    def genealogy(self, lot_id: str, direction: str = "backward",
                  reader: Principal | None = None) -> dict[str, Any]:
        """``{root, nodes, edges}`` of ``gmp.genealogy``; NotFound ``lot_not_found``; ``not_permitted``
        unless ``reader`` reads every record or took part in a batch of the graph."""
        if direction not in genealogy.DIRECTIONS:
            raise ValidationFailed(f"direction is one of {', '.join(genealogy.DIRECTIONS)}.",
                                   errors={"direction": "backward or forward"}, code="validation_failed")
        with self.engine.db.read() as session:
            found = genealogy.graph(session, lot_id, direction, self.engine.clock.now().date())
            genealogy.check_reader(session, reader, found)
            return found

    def consume_lot(self, caller: Caller, use: lots.Use, *, batch_id: str | None = None,
                    instance_id: int | None = None, step: int | None = None) -> dict[str, Any]:
        """Check and consume for the caller's request (``as_request``: its actor and correlation id; the
        consumption is dated ``use.at``); a refusal (EntryRefused, the reason as its code) is recorded as an
        audit event of its own and raised, the lot unchanged."""
        context = as_request(caller, self.engine.clock)
        try:
            with self.engine.db.unit_of_work(context.correlation_id) as session:
                return lots.consume(session, context.actor, use, batch_id=batch_id, instance_id=instance_id,
                                    step=step)
        except EntryRefused as exc:
            with self.engine.db.unit_of_work(context.correlation_id) as session:
                lots.record_refusal(session, context.actor, use, exc, batch_id=batch_id,
                                    instance_id=instance_id, step=step)
            raise

    # -- the equipment logbook (gmp.equipment_log) ---------------------------------------------------
    def equipment_logbook(self, reader: Principal | None, equipment_id: str) -> dict[str, Any]:
        """The equipment's state and logbook; ``not_permitted`` unless ``reader`` reads every record (as for
        batch records, ``engine.access``); NotFound for equipment nobody registered or logged."""
        access.check_every_record(reader, "equipment logbooks")
        with self.engine.db.read() as session:
            return equipment_log.logbook(session, equipment_id, self.engine.clock.now())

