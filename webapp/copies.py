"""Record copies (JSON, PDF, HTML) as responses to the signed-in browser session.

The read rule is the API's (``engine.access``, applied by the engine service that builds the copy): the
pages serve the same copies to the same people — the roles that read every record and the record's own
participants — so that a link on a page opens what its reader may read, with no bearer token."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, json

FORMATS = ("json", "pdf", "html")
MIMETYPES = {"json": "application/json", "pdf": "application/pdf", "html": "text/html"}


def checked_format(fmt: str) -> str:
    if fmt not in FORMATS:
        abort(404)
    return fmt


def copy_response(copy: Any, fmt: str, name: str) -> Response:
    """``copy`` as the engine built it (a dict, text or PDF bytes), opened in the browser (JSON: saved)."""
    body = json.dumps(copy, indent=2) if fmt == "json" else copy
    disposition = "attachment" if fmt == "json" else "inline"
    return Response(body, mimetype=MIMETYPES[fmt],
                    headers={"Content-Disposition": f'{disposition}; filename="{name}"'})
