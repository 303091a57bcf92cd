"""Definitions: lint, deploy, activate, the start page, the modeler and the process overview."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine import authority, identity, modeling, screens
from engine.application.base import EngineCore
from engine.definitions import deployments, interchange
from engine.definitions.bundle import Bundle, add_referenced_forms, read_bundle
from engine.definitions.lint import lint
from engine.definitions.open_tasks import open_tasks
from engine.dmn.lint import called_decisions
from engine.dmn.shared import decision_service_keys, evaluate_by_key
from engine.errors import DefinitionError, NotFound
from engine.identity import Principal
from engine.request_context import Caller, as_request
from engine.runtime import timer_starts
from engine.spiff.parsing import parse_bundle, parse_documents
from engine.states import Activation, DeploymentStatus
from engine.store.models import Deployment


class DeploymentServices(EngineCore):
    """Process and decision definitions, their versions and the modeler."""

    def lint(self, paths: list[str | Path], process: str | None = None) -> list[DefinitionError]:
        return self.lint_bundle(read_bundle(paths), process)

    def lint_bundle(self, bundle: Bundle, process: str | None = None) -> list[DefinitionError]:
        """Every problem of a bundle (file, element id, line), without storing anything; ``process``: which
        of several top-level executable processes it would run."""
        self._add_referenced_forms(bundle)
        shared: set[str] | None = None
        try:
            with self.db.read() as session:
                roles = identity.role_names(session) or set(identity.DEFAULT_ROLES)
                shared = decision_service_keys(session, called_decisions(parse_documents(bundle)))
                parsed, problems = lint(bundle, roles, self.registry, shared, self.model_checks, process)
                # against the active version: a signature or four-eyes rule it had may not be dropped
                return problems or deployments.signature_problems(session, parsed, bundle)
        except DBAPIError:  # linting needs no database; without one, lanes are checked against the defaults
            roles = set(identity.DEFAULT_ROLES)
        except DefinitionError:  # an unreadable file: lint below says where
            pass
        return lint(bundle, roles, self.registry, shared, self.model_checks, process)[1]

    def evaluate_decision(self, key: str, variables: dict[str, Any],
                          decision_id: str | None = None) -> dict[str, Any]:
        """Evaluate the active version of a DMN file deployed alone, as a business rule task would:
        ``{decision, version, deployment_id, value, variables}``. Stores nothing. Raises NotFound
        (``definition_not_found``, ``decision_not_found``) or DecisionFailed (``decision_failed``)."""
        return evaluate_by_key(self.runtime.script_engine.shared_decisions, key, variables, decision_id)

    def lint_notices(self, bundle: Bundle) -> list[interchange.Notice]:
        """What the bundle's files carry that gmpflow reads past (vendor extensions it does not run, Camunda
        values it cannot map, an assignee who is no user) and tasks that name no role (open to any signed-in
        user): said on lint and deploy, never a refusal."""
        try:
            trees = parse_documents(bundle)
        except DefinitionError:  # a file that does not parse: the lint names it
            return []
        found = [n for name, root in sorted(trees.items())
                 for n in (*interchange.notices(name, root), *open_tasks(name, root))]
        named = interchange.assignees(trees)
        if named:
            try:
                with self.db.read() as session:
                    users = {u.username for u in identity.list_users(session) if u.active}
            except DBAPIError:  # no database: no user is known
                users = set()
            found += [interchange.Notice(f"camunda:assignee names '{who}', who is no active user: the task "
                                         "opens unclaimed, for its role.", file, node.get("id"),
                                         node.sourceline,
                                         "unknown_assignee")
                      for file, node, who in named if who not in users]
        return found

    def who_may_start(self, paths: list[str | Path], process: str | None = None) -> tuple[str, list[str]]:
        """The key of a bundle that lints clean and who may start it (see ``start_roles``)."""
        bundle = read_bundle(paths)
        self._add_referenced_forms(bundle)
        parsed = parse_bundle(bundle, process=process)
        return parsed.key, authority.who_may_start(parsed)

    def deploy(self, caller: Caller, paths: list[str | Path] | None = None, bundle: Bundle | None = None,
               activate: bool | None = None, process: str | None = None) -> tuple[Deployment, bool]:
        """Store the bundle as a new version for the caller's request (``as_request``: created and audited at
        its time; a timer start's schedule runs on the engine's clock). ``process``: which of several
        top-level executable processes (pools) of the bundle to deploy; needed only when it holds several."""
        context = as_request(caller, self.clock)
        bundle = bundle or read_bundle(paths or [])
        self._add_referenced_forms(bundle)
        activate = self.change_control == "off" if activate is None else activate
        with self.db.unit_of_work(context.correlation_id) as session:
            return deployments.deploy(session, context.clock, self.registry, context.actor, bundle, activate,
                                      on_status=self._deployment_status_changed, checks=self.model_checks,
                                      process=process)

    def activate_deployment(self, caller: Caller, deployment_id: int, reason: str | None = None,
                            approved_by_instance_id: int | None = None,
                            activated_via: Activation | None = None) -> Deployment:
        """Make a version the active one for the caller's request (the ``reason`` given, else the
        request's), at its time."""
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            dep = session.get(Deployment, deployment_id)
            if dep is None:
                raise NotFound(f"There is no deployment {deployment_id}.", code="deployment_not_found")
            deployments.set_status(session, context.clock, context.actor, dep, DeploymentStatus.ACTIVE,
                                   context.why(reason),
                                   approved_by_instance_id, on_status=self._deployment_status_changed,
                                   activated_via=activated_via)
            return dep

    def _add_referenced_forms(self, bundle: Bundle) -> None:
        """The shared forms the models reference, from the configured folders (``GMPFLOW_FORMS_PATH``)."""
        add_referenced_forms(bundle, deployments.referenced_form_ids(bundle), self.config.forms_folders())

    def _deployment_status_changed(self, session: Session, dep: Deployment) -> None:
        """An active version owns its timer-start schedule; any other status has none."""
        if dep.status == DeploymentStatus.ACTIVE:
            timer_starts.schedule(session, self.runtime, dep, self.clock.now())
        else:
            timer_starts.cancel(session, dep, self.clock.now())

    def definitions(self) -> list[Deployment]:
        with self.db.read() as session:
            return list(session.scalars(select(Deployment).order_by(Deployment.key, Deployment.version)))

    def start_roles(self, deployment: Deployment) -> list[str]:
        """Who may start instances of the deployment (``engine.authority.start_gate``; empty: nobody but the
        engine, the process starts on a message or a timer)."""
        return authority.who_may_start(self.runtime.specs.get(deployment))

    def start_options(self, principal: Principal) -> list[dict[str, Any]]:
        """The start page: for the latest active version of each process, how it starts and whether
        ``principal`` may start it, with its start form (``screens.start_option``), by name."""
        with self.db.read() as session:
            latest = {d.key: d.id for d in session.scalars(
                select(Deployment).where(Deployment.status == DeploymentStatus.ACTIVE)
                .order_by(Deployment.key, Deployment.version))}
            parsed = [self.runtime.specs.get_by_id(session, i) for i in latest.values()]
            options = [screens.start_option(p, principal) for p in parsed if not p.is_decision_service]
        return sorted(options, key=lambda o: (o["name"] or o["key"]).lower())

    def get_deployment(self, deployment_id: int) -> Deployment:
        with self.db.read() as session:
            dep = session.get(Deployment, deployment_id)
            if dep is None:
                raise NotFound(f"There is no deployment {deployment_id}.", code="deployment_not_found")
            return dep

    # -- the modeler and the process overview -----------------------------------------------------------
    def process_versions(self) -> list[dict[str, Any]]:
        """Every process with each version's status and instance counts (see
        ``modeling.process_versions``)."""
        with self.db.read() as session:
            return modeling.process_versions(session)

    def deployment_overview(self, deployment_id: int) -> dict[str, Any]:
        """One version: ``deployment``, its files grouped by kind, the ``diagram`` XML and ``counts`` per
        element (open human tasks, pending jobs, open incidents of its unfinished instances)."""
        with self.db.read() as session:
            dep = session.get(Deployment, deployment_id)
            if dep is None:
                raise NotFound(f"There is no deployment {deployment_id}.", code="deployment_not_found")
            parsed = self.runtime.specs.get_by_id(session, deployment_id)
            return {"deployment": dep, "files": modeling.bundle_files(dep),
                    "diagram": screens.diagram_xml(parsed),
                    "counts": modeling.element_counts(session, deployment_id)}

    def modeler_view(self, deployment_id: int) -> dict[str, Any]:
        """What the browser modeler opens: ``deployment``, its ``files`` grouped by kind and the connector
        operations as element ``templates`` (see ``OperationRegistry.element_templates``)."""
        with self.db.read() as session:
            dep = session.get(Deployment, deployment_id)
            if dep is None:
                raise NotFound(f"There is no deployment {deployment_id}.", code="deployment_not_found")
            files = modeling.bundle_files(dep)
        return {"deployment": dep, "files": files, "templates": self.registry.element_templates()}

    def save_draft(self, caller: Caller, files: dict[str, str]) -> tuple[Deployment, bool]:
        """Deploy edited files as a new draft version (never active: a change control makes it so);
        raises ``DefinitionError`` (code ``lint_failed``, with ``problems``) when the lint finds any."""
        return self.deploy(caller, bundle=Bundle(dict(files)), activate=False)
