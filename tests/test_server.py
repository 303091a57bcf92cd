"""``gmpflow run``'s HTTP server (``webapp.server``): werkzeug's server with its request threads from a pool.
Every request is answered, also when more arrive at once than the pool has threads; the threads are the
pool's, and reused; closing the server ends the pool."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from webapp.server import PooledWSGIServer

THREADS = 2


class Gate:
    """A WSGI app whose requests wait until ``open`` (so several are in the server at once)."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.served_by: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.opened.wait(30)
        self.served_by.append(threading.current_thread().name)
        body = environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]


@pytest.fixture
def gate() -> Iterator[tuple[Gate, PooledWSGIServer]]:
    app = Gate()
    server = PooledWSGIServer("127.0.0.1", 0, app, threads=THREADS)
    loop = threading.Thread(target=server.serve_forever, daemon=True)
    loop.start()
    yield app, server
    app.opened.set()
    server.shutdown()
    loop.join(30)


def get(server: PooledWSGIServer, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_more_requests_at_once_than_threads_are_all_answered_by_the_pools_threads(
        gate: tuple[Gate, PooledWSGIServer]) -> None:
    app, server = gate
    paths = [f"/request-{n}" for n in range(3 * THREADS)]
    with ThreadPoolExecutor(len(paths)) as clients:
        answers = [clients.submit(get, server, path) for path in paths]
        app.opened.set()
        assert [answer.result(30) for answer in answers] == [(200, path) for path in paths]
    assert len(app.served_by) == len(paths)
    assert all(name.startswith("gmpflow-http") for name in app.served_by)
    assert len(set(app.served_by)) <= THREADS


def test_closing_the_server_ends_its_pool(gate: tuple[Gate, PooledWSGIServer]) -> None:
    app, server = gate
    app.opened.set()
    assert get(server, "/") == (200, "/")
    server.shutdown()
    server.server_close()
    with pytest.raises(RuntimeError):  # the pool takes no more work
        server.process_request(None, None)
