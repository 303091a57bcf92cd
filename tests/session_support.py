"""A browser session for the Flask test client without the login form: a real server-side session
(``engine.sessions``) of the user, bound to the app's key, in the client's cookie."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from engine import identity, sessions
from engine.services import Gmpflow


def browser_session(app: Flask, client: FlaskClient, engine: Gmpflow, username: str) -> str:
    """Sign ``username`` in on ``client``; returns the session's credential."""
    with engine.db.unit_of_work() as session:
        user_id = identity.get_user(session, username).id
        credential, _ = sessions.issue(session, engine.clock, str(app.config["SECRET_KEY"]), user_id,
                                       sessions.BROWSER)
    with client.session_transaction() as cookie:
        cookie["user"], cookie["sid"], cookie["seen"] = username, credential, engine.clock.now().timestamp()
    return credential
