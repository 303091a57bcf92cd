"""Deploy a bundle: lint, hash, version. Unchanged content makes no new version.

With change control ``required`` a new version is stored as a draft that only an approved change
control activates; with ``off`` (development, demos, tests) it is active at once. Activating a
version retires the previous active one; running instances stay on the version they started with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import audit, integrity
from engine.audit import Actor
from engine.clock import Clock
from engine.definitions import interchange, model_diff
from engine.definitions import lint as linting
from engine.definitions.bundle import Bundle
from engine.dmn.lint import called_decisions
from engine.dmn.shared import decision_service_keys
from engine.errors import DefinitionError
from engine.identity import role_names
from engine.operations import OperationRegistry
from engine.spiff.parsing import NS, parse_documents
from engine.states import Activation, DeploymentStatus, check_transition
from engine.store.models import Deployment


def referenced_form_ids(bundle: Bundle) -> set[str]:
    ids = set()
    for root in parse_documents(bundle).values():
        for prop in root.iterfind(".//spiffworkflow:property", NS):
            if prop.get("name") == "formId" and prop.get("value"):
                ids.add(prop.get("value"))
        ids |= {form for node in root.iter() if isinstance(node.tag, str)
                and (form := interchange.mapped_form_id(node))}
    return ids


def active_version(session: Session, key: str) -> Deployment | None:
    return session.scalar(select(Deployment).where(Deployment.key == key,
                                                   Deployment.status == DeploymentStatus.ACTIVE)
                          .order_by(Deployment.version.desc()).limit(1))


def signature_problems(session: Session, parsed: linting.ParsedDefinition | None, bundle: Bundle
                       ) -> list[DefinitionError]:
    """A new version may not drop a signature or a four-eyes rule that the active version has
    (``signature_dropped``): that would weaken a control silently, whatever the change control approves."""
    previous = active_version(session, parsed.key) if parsed is not None else None
    if previous is None:
        return []
    problems = []
    for drop in model_diff.diff(Bundle(dict(previous.files)), bundle)["dropped_signatures"]:
        file, line = parsed.element_line(drop["element_id"]) if parsed is not None else (None, None)
        what = ("the task is gone" if drop["task_removed"]
                else f"it no longer has {', '.join(drop['dropped'])}")
        problems.append(DefinitionError(
            f"The active version {previous.version} of '{previous.key}' has {drop['property']} "
            f"'{', '.join(drop['dropped'])}' on task '{drop['name'] or drop['element_id']}'; in this version "
            f"{what}. Keep the signature (and its four-eyes rule) or retire the process by change control.",
            file=file, element_id=drop["element_id"], line=line, code="signature_dropped"))
    return problems


def lint_or_raise(bundle: Bundle, roles: set[str], registry: OperationRegistry,
                  shared_decisions: set[str] | None = None, session: Session | None = None,
                  checks: Sequence[linting.ModelCheck] = (), process: str | None = None
                  ) -> linting.ParsedDefinition:
    parsed, problems = linting.lint(bundle, roles, registry, shared_decisions, checks, process)
    if session is not None and not problems:
        problems = signature_problems(session, parsed, bundle)
    if problems or parsed is None:
        first = problems[0]
        summary = f"{len(problems)} problem(s); first: {first}" if len(problems) > 1 else str(first)
        raise DefinitionError(f"The model cannot be deployed: {summary}", file=first.file,
                              element_id=first.element_id, line=first.line, code="lint_failed",
                              problems=[{"message": p.message, **p.context, "code": p.code}
                                        for p in problems])
    return parsed


StatusHook = Callable[[Session, Deployment], None]  # told of every status change, in the same transaction


def deploy(session: Session, clock: Clock, registry: OperationRegistry, actor: Actor, bundle: Bundle,
           activate: bool, on_status: StatusHook | None = None, checks: Sequence[linting.ModelCheck] = (),
           process: str | None = None) -> tuple[Deployment, bool]:
    """Store the bundle as a new version unless identical content exists; returns (deployment, created).
    ``process``: which of several top-level executable processes it runs (its key)."""
    shared = decision_service_keys(session, called_decisions(parse_documents(bundle)))
    parsed = lint_or_raise(bundle, role_names(session), registry, shared, session, checks, process)
    content_hash = bundle.content_hash
    same = session.scalar(select(Deployment).where(Deployment.key == parsed.key,
                                                   Deployment.content_hash == content_hash)
                          .order_by(Deployment.version.desc()).limit(1))
    if same is not None:
        return same, False
    version = (session.scalar(select(func.max(Deployment.version))
                              .where(Deployment.key == parsed.key)) or 0) + 1
    now = clock.now()
    dep = Deployment(key=parsed.key, version=version, name=parsed.name, status=DeploymentStatus.DRAFT,
                     content_hash=content_hash, files=dict(bundle.files), created_by=actor.id, created_at=now)
    integrity.seal_deployment(integrity.key_of(session), dep)
    session.add(dep)
    session.flush()
    audit.record(session, actor, "deployment.created", "deployment", dep.id, f"{dep.key} v{dep.version}",
                 at=now, after={"key": dep.key, "version": dep.version, "content_hash": content_hash,
                        "files": sorted(bundle.files)})
    if activate:
        set_status(session, clock, actor, dep, DeploymentStatus.ACTIVE, reason="change control is off",
                   on_status=on_status, activated_via=Activation.DIRECT)
    return dep, True


def hold_for_review(session: Session, dep: Deployment, instance_id: int | None) -> None:
    """Record the change-request instance that claims ``dep`` (``change_request_instance_id``, sealed). The
    caller audits the claim in the same unit of work; the column is never cleared: it holds the deployment
    while ``in_review`` and the instance is unfinished, and names the approver after a governed activation."""
    dep.change_request_instance_id = instance_id
    integrity.seal_deployment(integrity.key_of(session), dep)


def set_status(session: Session, clock: Clock, actor: Actor, dep: Deployment, status: DeploymentStatus,
               reason: str | None = None, approved_by_instance_id: int | None = None,
               on_status: StatusHook | None = None, activated_via: Activation | None = None) -> None:
    """``activated_via`` (with ``ACTIVE``) says how it goes live: ``CHANGE_CONTROL`` needs
    ``approved_by_instance_id``; without one, a direct activation. Recorded on the row and in the event."""
    check_transition(dep.status, status, "deployment")
    after: dict[str, object] = {"status": status}
    now = clock.now()
    if status == DeploymentStatus.ACTIVE:
        for previous in session.scalars(select(Deployment).where(
                Deployment.key == dep.key, Deployment.status == DeploymentStatus.ACTIVE)):
            previous.status = DeploymentStatus.RETIRED
            integrity.seal_deployment(integrity.key_of(session), previous)
            audit.record(session, actor, "deployment.retired", "deployment", previous.id,
                         f"{previous.key} v{previous.version}", at=now,
                         before={"status": DeploymentStatus.ACTIVE},
                         after={"status": DeploymentStatus.RETIRED}, reason=f"superseded by v{dep.version}")
            if on_status is not None:
                on_status(session, previous)
        via = activated_via or (Activation.CHANGE_CONTROL if approved_by_instance_id else Activation.DIRECT)
        if (via == Activation.CHANGE_CONTROL) != (approved_by_instance_id is not None):
            raise ValueError("a change-control activation names its approving instance, and only it does")
        dep.activated_at, dep.approved_by_instance_id, dep.activated_via = now, approved_by_instance_id, via
        after.update(activated_via=str(via), approved_by_instance_id=approved_by_instance_id)
    before = dep.status
    dep.status = status
    integrity.seal_deployment(integrity.key_of(session), dep)
    audit.record(session, actor, f"deployment.{status}", "deployment", dep.id, f"{dep.key} v{dep.version}",
                 at=now, before={"status": before}, after=after, reason=reason)
    if on_status is not None:
        on_status(session, dep)
