"""``gmpflow run``'s HTTP server: waitress (Pylons' pure-Python WSGI server), in the ``gmpflow run`` process.

Why waitress rather than werkzeug's development server: one thread reads and writes every connection
(``select``/``poll``) and hands each complete request to a fixed pool of threads, so a connection kept open
between requests (HTTP/1.1 keep-alive, which werkzeug's server lacks) holds no thread, and no request starts
one. On the bench's 2-core machine that is 0.17-0.18 ms of server CPU per request on a trivial app against
werkzeug's 0.41-0.54, and about a quarter less CPU per approval over the REST API (issue 19's figures). It
stays one process, as ``gmpflow run`` must (the job worker runs in it); production's several processes are
gunicorn's (README).

Two request threads by default (``GMPFLOW_WEB_THREADS``): Python runs one thread at a time, and sqlite3 lets
go of it around every statement, so with more threads busy each statement became a handover between them
(four clients: 2,846 ``futex`` calls per approval on 8 threads); two serve four clients a fifth faster and
still leave one thread free while a request is slow (``bench/README.md``).

The pool's threads are daemon threads: Ctrl+C ends the server even while a client holds a connection open
without sending anything (a browser's preconnect does), and waitress waits at most a few seconds for the
requests being served.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from typing import Any

import click
from waitress import wasyncore
from waitress.server import create_server

from engine.config import Config
from webapp import MAX_BODY_BYTES

THREADS = Config.web_threads  # requests served at once (GMPFLOW_WEB_THREADS); each holds one of the database
# pool's 30 connections at most
BODY_LIMIT = 4 * MAX_BODY_BYTES  # waitress answers 413 itself beyond this


def make_server(app: Any, host: str, port: int, threads: int = THREADS) -> Any:
    """A server bound to ``host:port`` (``OSError`` when the port is taken), not yet serving: ``run()`` serves
    until interrupted, ``stop()`` ends it from another thread."""
    # bound here, before waitress starts its pool: waitress binds after, and leaks pool and socket on failure
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.create_server((host, port), family=family)
    return create_server(app, sockets=[listening], threads=threads, ident="gmpflow",
                         asyncore_use_poll=True,  # select() fails beyond 1,024 open descriptors
                         # waitress reads a whole body before the app sees it: past the app's own limit
                         # (a 413 problem) it need not read far, nor buffer a huge body to disk
                         max_request_body_size=BODY_LIMIT)


class OncePerMinute(logging.Filter):
    """Lets one record through a minute. waitress warns "Task queue depth is N" for every request that waits
    for a thread: a busy server would write a line per request, which says nothing the first does not."""

    def __init__(self, seconds: float = 60.0) -> None:
        super().__init__()
        self.seconds, self._last = seconds, float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self._last < self.seconds:
            return False
        self._last = now
        return True


QUEUE_LOG = logging.getLogger("waitress.queue")
if not any(isinstance(f, OncePerMinute) for f in QUEUE_LOG.filters):
    QUEUE_LOG.addFilter(OncePerMinute())


def serve(app: Any, host: str, port: int, threads: int = THREADS) -> None:
    """Serve ``app`` on ``host:port`` with ``threads`` request threads until interrupted; a taken port is
    said, not a traceback."""
    try:
        server = make_server(app, host, port, threads)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise click.ClickException(f"port {port} on {host} is in use (another gmpflow run?): "
                                   "stop it or choose another with --port") from exc
    try:
        shown = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
        click.echo(f" * Running on http://{shown}:{server.effective_port}\nPress CTRL+C to quit")
        server.run()  # returns on Ctrl+C, its pool stopped
    finally:
        server.task_dispatcher.shutdown()  # when run() ended otherwise; a second call returns at once
        server.close()


def stop(server: Any) -> None:
    """End a server's ``run()`` in another thread: its loop closes every connection and its socket (the loop
    ends when it has nothing left to watch), then the pool's threads end."""
    if server._map:  # not stopped yet
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))  # in the loop's thread: no race
    server.task_dispatcher.shutdown()
