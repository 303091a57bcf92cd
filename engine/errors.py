"""The engine's error hierarchy.

Every error carries a stable ``code`` (clients and tests match on it) and a
message a process owner or operator can act on. Only the web app maps these
to HTTP statuses, in one place.
"""

from __future__ import annotations

from typing import Any


class GmpflowError(Exception):
    """Root of every error the engine raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.context = {k: v for k, v in context.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.context}


class DefinitionError(GmpflowError):
    """A model (BPMN, DMN, form) is invalid; says where: file, element id, line."""

    code = "definition_invalid"

    def __init__(self, message: str, *, file: str | None = None, element_id: str | None = None,
                 line: int | None = None, code: str | None = None,
                 problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, code=code, file=file, element_id=element_id, line=line, problems=problems)
        self.file, self.element_id, self.line = file, element_id, line

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p)
        if self.element_id:
            where = f"{where} [{self.element_id}]" if where else f"[{self.element_id}]"
        return f"{where}: {self.message}" if where else self.message


class UnsafeXml(DefinitionError):
    """An XML document uses DTDs, entities, network access or is too large."""

    code = "xml_forbidden"


class ScriptRejected(DefinitionError):
    """An expression or script is not allowed in the sandbox (imports, dunders, ...)."""

    code = "script_rejected"


class ScriptFailed(GmpflowError):
    """A sandboxed expression or script raised, or ran out of time, while the instance ran."""

    code = "script_failed"


class ValidationFailed(GmpflowError):
    """Submitted data is invalid; ``errors`` maps field names to messages."""

    code = "validation_failed"

    def __init__(self, message: str, *, errors: dict[str, str] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, code=code, errors=errors or {})
        self.errors = errors or {}


class UndeclaredField(ValidationFailed):
    """Data names keys its form (or message definition) does not declare, or that a client may not set
    (read-only, computed, written by the engine); ``fields`` lists them. Nothing is stored."""

    code = "undeclared_field"

    def __init__(self, message: str, *, fields: list[str]) -> None:
        super().__init__(message, errors={k: "not declared" for k in fields})
        self.fields = fields


class EntryRefused(ValidationFailed):
    """Well-formed data that the rules refuse (a lot that may not be used, a quantity off the recipe): the
    ``code`` names the reason, ``errors`` the field. Nothing is stored but the refused attempt's audit
    event."""

    code = "entry_refused"


class NotFound(GmpflowError):
    code = "not_found"


class Conflict(GmpflowError):
    """The object is not in a state that allows the action (task already completed, claimed by another...)."""

    code = "conflict"


class AuthenticationFailed(GmpflowError):
    code = "unauthenticated"


class PasswordChangeRequired(AuthenticationFailed):
    """The password is right but one-time (set by an admin) or too old: no token, no session until changed.
    403, not 401: the credentials were good, signing in again does not help."""

    code = "password_change_required"


class PermissionDenied(GmpflowError):
    code = "forbidden"


class SignatureRejected(GmpflowError):
    """An electronic signature was refused; the task stays open and nothing else changes.

    Codes: ``signature_required``, ``signature_user_mismatch``, ``signature_password_invalid``,
    ``signature_account_locked``, ``signature_password_change_required``,
    ``signature_meaning_not_allowed``, ``signature_four_eyes``. ``counted_against`` names the user whose
    failed-attempt count the rejection raises (None: it does not count), recorded after the rollback.
    """

    code = "signature_rejected"

    def __init__(self, message: str, *, code: str, counted_against: str | None = None) -> None:
        super().__init__(message, code=code)
        self.counted_against = counted_against


class ConnectorError(GmpflowError):
    """A connector call failed; ``retryable`` says whether a retry may succeed."""

    code = "connector_failed"

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = True,
                 bpmn_error_code: str | None = None) -> None:
        super().__init__(message, code=code, bpmn_error_code=bpmn_error_code)
        self.retryable = retryable
        self.bpmn_error_code = bpmn_error_code


class AuditKeyMissing(GmpflowError):
    """The audit key file (``engine.integrity``) is missing or unreadable: nothing is audited, so nothing
    may be written, and the trail cannot be verified."""

    code = "audit_key_missing"


class PackMissing(GmpflowError, LookupError):
    """A process pack's services were asked for (``Gmpflow.pack``) but no registered pack offers them: the
    installation lacks the pack (a server's configuration, not the caller's request)."""

    code = "pack_missing"
