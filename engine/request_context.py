"""Who asks, when and why: one ``RequestContext`` made per HTTP request and passed to the services that act on
someone's behalf, instead of a principal, a reason and a time handed over separately.

The web app makes it once per request (``webapp.request_context``: the signed-in principal, the engine's
clock, the client's ``X-Request-Id`` when it is a sane one). ``at`` is the moment of the request, which the
audit events of its action carry; ``correlation_id`` names the request (the client's, or a new one): a service
opens its units of work with it (``Database.transaction(correlation_id)``), so that every audit event of the
request carries it too (``audit_event.correlation_id``, hashed into the chain). The engine's own work (jobs,
timers) is asked by no request: its events carry none.
The services a user acts on most take ``Principal | RequestContext`` (``as_request``): the web app passes the
request's context, while the CLI, in-process callers and tests may pass a principal, which is then a request
of its own made at the engine's clock's now.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from engine.audit import Actor
from engine.clock import Clock
from engine.identity import Principal

CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")  # a client's id is kept only if it looks like one


def new_correlation_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RequestContext:
    actor: Actor                        # who, as the audit trail records it
    at: datetime                        # when the request arrived (the engine's clock)
    principal: Principal | None = None  # who, with roles: None for the engine itself
    reason: str | None = None           # why (an action on existing data needs one)
    correlation_id: str | None = field(default_factory=new_correlation_id)  # None: the engine's own work

    @classmethod
    def of(cls, caller: Principal | Actor, at: datetime, *, correlation_id: str | None = None
           ) -> RequestContext:
        """The context of ``caller``'s request; a ``correlation_id`` that is no sane id is replaced by a new
        one."""
        principal = caller if isinstance(caller, Principal) else None
        actor = caller.actor if isinstance(caller, Principal) else caller
        sane = correlation_id if correlation_id and CORRELATION_ID.fullmatch(correlation_id) else None
        return cls(actor, at, principal, correlation_id=sane or new_correlation_id())

    @classmethod
    def claimed(cls, username: str, at: datetime, *, correlation_id: str | None = None) -> RequestContext:
        """The context of a request made without a session by whoever claims to be ``username`` (a password
        change): the service proves the claim before it acts, and records the act as the proven user."""
        return cls.of(Actor(username, username), at, correlation_id=correlation_id)

    @classmethod
    def engines_own(cls, at: datetime) -> RequestContext:
        """The engine acting on its own at ``at`` (a job sends a message): asked by no request, it has no
        correlation id, and its audit events carry none."""
        return cls(Actor.system(), at, correlation_id=None)

    def because(self, reason: str | None) -> RequestContext:
        """The same request, for an action whose reason is ``reason``."""
        return replace(self, reason=reason)

    def why(self, reason: str | None) -> str | None:
        """``reason`` when the caller gave one, else the request's own."""
        return reason if reason is not None else self.reason

    @property
    def clock(self) -> Clock:
        """A clock stopped at the request's time: for the helpers that take a clock and record what they do at
        its now (``engine.identity``), so that all of one request happens at ``at``."""
        return StoppedClock(self.at)


class StoppedClock(Clock):
    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at


Caller = Principal | Actor | RequestContext  # who a service acts for: ``as_request`` makes it a request


def as_request(caller: Caller, clock: Clock) -> RequestContext:
    """``caller``'s request: a context as it is, a principal (or the engine itself, an ``Actor``) as a request
    of its own made now (``clock``)."""
    return caller if isinstance(caller, RequestContext) else RequestContext.of(caller, clock.now())
