"""The web app: a Flask application factory over the engine's services.

Nothing connects or starts at import time; ``create_app`` builds an app around a ``Gmpflow``
(given, or made from the environment's configuration, ``engine.config.Config``) kept at
``app.extensions["gmpflow"]``; the app's own settings (session, rate limits, secret key) come from that
engine's ``config``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from engine.operations import configured_registry
from engine.services import Gmpflow

MAX_BODY_BYTES = 1024 * 1024


def create_app(config: dict[str, Any] | None = None, engine: Gmpflow | None = None) -> Flask:
    """Build the app. ``config`` (Flask's) overrides what the engine's configuration gives; without
    ``SECRET_KEY`` there, the key comes from ``GMPFLOW_SECRET_KEY`` (``Config.secret_key``) or, failing that,
    from the database (generated once, then kept)."""
    from webapp import (
        admin,
        auth,
        batches,
        formatting,
        genealogy,
        guard,
        home,
        inbox,
        live,
        masterdata,
        modeler,
        problems,
        ratelimits,
        request_context,
        start,
    )
    from webapp.api import IdConverter, KeyConverter, api
    from webapp.jsonio import GmpflowJSONProvider

    app = Flask(__name__)
    app.json_provider_class = GmpflowJSONProvider
    app.json = GmpflowJSONProvider(app)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, JSON_SORT_KEYS=False)
    engine = engine or Gmpflow(registry=configured_registry())
    app.extensions["gmpflow"] = engine
    app.config.update(guard.session_defaults(engine.config))
    app.config.update(ratelimits.settings(engine.config))
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = engine.config.secret_key
    if not app.config["SECRET_KEY"]:
        app.before_request(lambda: _load_stored_secret(app))

    app.url_map.converters.update(id=IdConverter, key=KeyConverter)
    problems.register(app)
    guard.init_app(app)  # session, idle timeout, role checks, CSRF (the bearer-token API is exempt), headers
    formatting.init_app(app)
    request_context.init_app(app)  # names a request that made a context in its response (X-Request-Id)
    guard.csrf.exempt(api)
    app.register_blueprint(api)
    for area in (home, auth, start, inbox, admin, modeler, masterdata, batches, live, genealogy):
        app.register_blueprint(area.bp)
    ratelimits.init_app(app)  # wraps the password routes' views: after every blueprint is registered
    return app


def _load_stored_secret(app: Flask) -> None:
    """The database-kept secret key, read on the first request (nothing connects at start)."""
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = app.extensions["gmpflow"].secret("secret_key")
