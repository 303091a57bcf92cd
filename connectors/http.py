"""The one HTTP helper the HTTP connectors share (stdlib ``urllib``): a request, its status and body,
with transport failures as retryable ConnectorErrors that name the counterpart, never a credential."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from engine.errors import ConnectorError

TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str


def request(method: str, url: str, *, counterpart: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = TIMEOUT_SECONDS) -> Reply:
    """Any HTTP status is returned; only an unreachable counterpart or a timeout raises (retryable)."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return Reply(response.status, response.read(), response.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        try:
            return Reply(exc.code, exc.read(), exc.headers.get("Content-Type", "") if exc.headers else "")
        finally:
            exc.close()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectorError(f"{counterpart} cannot be reached: {reason}.",
                             code="counterpart_unavailable") from None


def unexpected(counterpart: str, what: str, reply: Reply) -> ConnectorError:
    """A ConnectorError for a status the caller did not expect: 5xx and 429 retryable, the rest not."""
    detail = reply.body[:300].decode("utf-8", "replace").strip()
    retryable = reply.status >= 500 or reply.status == 429
    return ConnectorError(f"{counterpart} answered HTTP {reply.status} to {what}"
                          + (f": {detail}" if detail else "."),
                          code="counterpart_http_error", retryable=retryable)
