"""``gmpflow run``'s HTTP server (``webapp.server``): werkzeug's server with its request threads from a pool.
Every request is answered, also when more arrive at once than the pool has threads; the threads are the
pool's, and reused; closing the server ends them; Ctrl+C ends ``gmpflow run`` even while a client holds an
idle connection open."""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.crash_support import free_port, gmpflow_env, kill, serve_web
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


def test_closing_the_server_ends_its_threads(gate: tuple[Gate, PooledWSGIServer]) -> None:
    app, server = gate
    app.opened.set()
    assert [get(server, "/one"), get(server, "/two")] == [(200, "/one"), (200, "/two")]
    server.shutdown()
    server.server_close()
    for thread in server.threads:
        thread.join(30)
    assert server.threads and not any(thread.is_alive() for thread in server.threads)


def test_ctrl_c_ends_gmpflow_run_while_a_client_holds_an_idle_connection(tmp_path: Path,
                                                                         sqlite_template: Path) -> None:
    shutil.copy(sqlite_template, tmp_path / "run.db")
    env = gmpflow_env(f"sqlite:///{tmp_path / 'run.db'}", GMPFLOW_SIMULATOR="off", GMPFLOW_SECRET_KEY="k")
    port = free_port()
    process, _ = serve_web(["run", "--port", str(port)], env, tmp_path / "run.log", port)
    try:
        with socket.create_connection(("127.0.0.1", port)):  # a browser's preconnect: sends nothing
            process.send_signal(signal.SIGINT)
            try:
                code = process.wait(60)
            except subprocess.TimeoutExpired:
                code = None
        assert code == 0, (tmp_path / "run.log").read_text()[-2000:]
    finally:
        kill(process)
