"""``gmpflow run``'s HTTP server (``webapp.server``, waitress): every request is answered, also when more
arrive at once than the pool has threads, by the pool's threads; a client keeps its connection between
requests; stopping the server ends its threads and closes its connections and socket; a taken port is
refused with a message; Ctrl+C ends ``gmpflow run`` even while a client holds an idle connection open."""

from __future__ import annotations

import http.client
import logging
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
import pytest

from tests.crash_support import free_port, gmpflow_env, kill, serve_web
from webapp.server import BODY_LIMIT, QUEUE_LOG, OncePerMinute, make_server, serve, stop

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
def gate() -> Iterator[tuple[Gate, Any]]:
    app = Gate()
    server = make_server(app, "127.0.0.1", 0, threads=THREADS)
    server.loop = threading.Thread(target=server.run, daemon=True)
    server.loop.start()
    yield app, server
    app.opened.set()
    stop(server)
    server.loop.join(30)


def get(server: Any, path: str, connection: http.client.HTTPConnection | None = None) -> tuple[int, str]:
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", int(server.effective_port), timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        if own:
            connection.close()


def test_more_requests_at_once_than_threads_are_all_answered_by_the_pools_threads(
        gate: tuple[Gate, Any]) -> None:
    app, server = gate
    paths = [f"/request-{n}" for n in range(3 * THREADS)]
    with ThreadPoolExecutor(len(paths)) as clients:
        answers = [clients.submit(get, server, path) for path in paths]
        app.opened.set()
        assert [answer.result(30) for answer in answers] == [(200, path) for path in paths]
    assert len(app.served_by) == len(paths)
    assert all(name.startswith("waitress-") for name in app.served_by)
    assert len(set(app.served_by)) <= THREADS


def test_requests_waiting_for_a_thread_are_said_once_a_minute_not_once_each(
        gate: tuple[Gate, Any], caplog: pytest.LogCaptureFixture) -> None:
    app, server = gate
    for log_filter in QUEUE_LOG.filters:
        if isinstance(log_filter, OncePerMinute):
            log_filter._last = float("-inf")  # as if the last warning were a minute ago
    waiting = 3 * THREADS  # beyond the THREADS requests the gate holds in the pool's threads
    with caplog.at_level(logging.WARNING, logger="waitress.queue"), ThreadPoolExecutor(4 * THREADS) as pool:
        answers = [pool.submit(get, server, f"/wait-{n}") for n in range(4 * THREADS)]
        deadline = time.monotonic() + 30
        while len(server.task_dispatcher.queue) < waiting and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.task_dispatcher.queue) == waiting
        app.opened.set()
        assert all(answer.result(30)[0] == 200 for answer in answers)
    assert len([r for r in caplog.records if "queue depth" in r.getMessage()]) == 1


def test_a_client_keeps_its_connection_between_requests(gate: tuple[Gate, Any]) -> None:
    app, server = gate
    app.opened.set()
    connection = http.client.HTTPConnection("127.0.0.1", int(server.effective_port), timeout=30)
    try:
        assert get(server, "/one", connection) == (200, "/one")
        first = connection.sock
        assert get(server, "/two", connection) == (200, "/two")
        assert first is not None and connection.sock is first  # not reopened: the server kept it
    finally:
        connection.close()


def test_stopping_the_server_ends_its_loop_and_threads_and_closes_its_connections(
        gate: tuple[Gate, Any]) -> None:
    app, server = gate
    app.opened.set()
    idle = http.client.HTTPConnection("127.0.0.1", int(server.effective_port), timeout=30)
    assert [get(server, "/one", idle), get(server, "/two")] == [(200, "/one"), (200, "/two")]
    pool = [thread for thread in threading.enumerate() if thread.name.startswith("waitress-")]
    stop(server)
    server.loop.join(30)
    for thread in pool:
        thread.join(30)
    assert pool and not server.loop.is_alive() and not any(thread.is_alive() for thread in pool)
    assert idle.sock is not None and idle.sock.recv(1) == b""  # the kept connection: closed by the server
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(server.effective_port)), timeout=30).close()


def test_a_body_far_past_the_apps_limit_is_refused_before_the_app_is_called(gate: tuple[Gate, Any]) -> None:
    app, server = gate
    app.opened.set()
    with socket.create_connection(("127.0.0.1", int(server.effective_port)), timeout=30) as client:
        # the declared length is enough: no byte of the body is read, or buffered
        client.sendall(f"POST /huge HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY_LIMIT + 1}\r\n\r\n".encode())
        assert client.recv(64).startswith(b"HTTP/1.1 413")
    assert app.served_by == []


def test_an_ipv6_loopback_address_is_served() -> None:
    app = Gate()
    app.opened.set()
    server = make_server(app, "::1", 0)
    loop = threading.Thread(target=server.run, daemon=True)
    loop.start()
    try:
        connection = http.client.HTTPConnection("::1", int(server.effective_port), timeout=30)
        connection.request("GET", "/six")
        assert (connection.getresponse().status, app.served_by != []) == (200, True)
        connection.close()
    finally:
        stop(server)
        loop.join(30)


def test_serve_prints_a_url_a_browser_opens_an_ipv6_host_in_brackets(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    made = []

    def recorded(*args: Any) -> Any:
        made.append(make_server(*args))
        return made[-1]

    monkeypatch.setattr("webapp.server.make_server", recorded)
    serving = threading.Thread(target=serve, args=(Gate(), "::1", 0), daemon=True)
    serving.start()
    deadline = time.monotonic() + 30
    while not made and time.monotonic() < deadline:
        time.sleep(0.01)
    stop(made[0])
    serving.join(30)
    assert not serving.is_alive()
    assert capsys.readouterr().out.startswith(f" * Running on http://[::1]:{made[0].effective_port}\n")


def test_a_port_in_use_is_refused_with_a_message_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(click.ClickException, match=f"port {port} on 127.0.0.1 is in use"):
            serve(Gate(), "127.0.0.1", port)


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
        log = (tmp_path / "run.log").read_text()
        assert code == 0, log[-2000:]
        assert f" * Running on http://127.0.0.1:{port}" in log
    finally:
        kill(process)
