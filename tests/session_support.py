"""A browser session for the Flask test client without the login form: a real server-side session
(``engine.sessions``) of the user, bound to the app's key, in the client's cookie."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from engine import identity, sessions
from engine.services import Gmpflow


def browser_session(app: Flask, client: FlaskClient, engine: Gmpflow, username: str) -> str:
    """Sign ``username`` in on ``client``; returns the session's credential."""
    with engine.db.unit_of_work() as session:
        user_id = identity.get_user(session, username).id
        credential, _ = sessions.issue(session, engine.clock, str(app.config["SECRET_KEY"]), user_id,
                                       sessions.BROWSER, engine.config.token_hours)
    with client.session_transaction() as cookie:
        cookie["user"], cookie["sid"], cookie["seen"] = username, credential, engine.clock.now().timestamp()
    return credential


class ApiCaller:
    """Calls the REST API of ``engine`` as named users (password ``password``), one token per user.

    A test that compares stored state before and after a request signs its users in first
    (``sign_in``): issuing a token stores a session row of its own.
    """

    def __init__(self, engine: Gmpflow, secret_key: str, password: str) -> None:
        from webapp import create_app

        self.client = create_app({"TESTING": True, "SECRET_KEY": secret_key}, engine=engine).test_client()
        self.password = password
        self.tokens: dict[str, str] = {}

    def sign_in(self, *usernames: str) -> ApiCaller:
        for username in usernames:
            if username not in self.tokens:
                answer = self.client.post("/api/v1/tokens",
                                          json={"username": username, "password": self.password})
                self.tokens[username] = answer.json["token"]  # type: ignore[index]
        return self

    def __call__(self, method: str, path: str, who: str, body: dict[str, object] | None = None) -> Any:
        self.sign_in(who)
        return self.client.open(path, method=method, json=body,
                                headers={"Authorization": f"Bearer {self.tokens[who]}"})
