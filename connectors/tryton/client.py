"""A small Tryton JSON-RPC client: log in once, call ``model.*`` methods, map failures to ConnectorError.

Transport failures (connection refused, timeouts, 5xx) are retryable; Tryton's own refusals
(``UserError``, ``AccessError``...) are not. Messages never contain the password.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from engine.errors import ConnectorError

TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class TrytonSettings:
    url: str        # the server, e.g. http://erp.example.com:8000
    database: str
    user: str
    password: str

    @property
    def rpc_url(self) -> str:
        return f"{self.url.rstrip('/')}/{self.database}/rpc/"


class TrytonError(ConnectorError):
    """Tryton refused a call; ``kind`` is its exception class name (UserError, AccessError, ...)."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message, code="tryton_error", retryable=False)
        self.kind = kind


class TrytonClient:
    def __init__(self, settings: TrytonSettings, timeout: float = TIMEOUT_SECONDS) -> None:
        self.settings, self.timeout = settings, timeout
        self._auth: str | None = None
        self._context: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._ids = 0

    def model(self, model: str, method: str, *args: Any) -> Any:
        """Call ``model.<model>.<method>(*args, context)``, logging in first (again if the session
        expired)."""
        for attempt in (1, 2):
            auth = self._session()
            try:
                return self._post(f"model.{model}.{method}", [*args, self._context], auth)
            except _SessionExpired:
                with self._lock:
                    self._auth = None
                if attempt == 2:
                    raise ConnectorError(f"Tryton refused {model}.{method} (HTTP 401/403): the method does "
                                         "not exist or the user may not call it.",
                                         code="tryton_unauthorized", retryable=False) from None
        raise AssertionError("unreachable")

    def _session(self) -> str:
        with self._lock:
            if self._auth is None:
                s = self.settings
                result = self._post("common.db.login", [s.user, {"password": s.password}, "en"], None)
                if not result:
                    raise ConnectorError(f"Tryton refused the login of user '{s.user}' on database "
                                         f"'{s.database}'.", code="tryton_login_failed", retryable=False)
                uid, session = result[0], result[1]
                token = base64.b64encode(f"{s.user}:{uid}:{session}".encode()).decode()
                self._auth = f"Session {token}"
                self._context = self._post("model.res.user.get_preferences", [True, {}], self._auth)
            return self._auth

    def _post(self, method: str, params: list[Any], auth: str | None) -> Any:
        self._ids += 1
        body = json.dumps({"id": self._ids, "method": method, "params": params}).encode()
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = auth
        request = urllib.request.Request(self.settings.rpc_url, data=body, headers=headers, method="POST")
        where = f"Tryton at {self.settings.url} (database {self.settings.database})"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (401, 403) and method != "common.db.login":
                raise _SessionExpired() from None
            if exc.code in (401, 403):
                raise ConnectorError(f"{where} refused the login of user '{self.settings.user}'.",
                                     code="tryton_login_failed", retryable=False) from None
            if exc.code == 429:
                raise ConnectorError(f"{where} is rate-limiting logins (HTTP 429).",
                                     code="tryton_unavailable") from None
            retryable = exc.code >= 500 or exc.code == 404 and method == "common.db.login"
            raise ConnectorError(f"{where} answered HTTP {exc.code} to {method}.", code="tryton_http_error",
                                 retryable=retryable) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectorError(f"{where} cannot be reached: {reason}.", code="tryton_unavailable") from None
        except ValueError:
            raise ConnectorError(f"{where} answered {method} with something that is not JSON.",
                                 code="tryton_bad_reply") from None
        error = reply.get("error")
        if error:
            kind, args = (error + [None])[:2] if isinstance(error, list) else (str(error), None)
            if kind in ("401", "403") or "Session" in str(kind) and method != "common.db.login":
                raise _SessionExpired()
            detail = args[0] if isinstance(args, list) and args else args
            raise TrytonError(f"Tryton refused {method}: {kind}: {detail}".rstrip(": "), kind=str(kind))
        return reply.get("result")


class _SessionExpired(Exception):
    pass
