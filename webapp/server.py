"""``gmpflow run``'s HTTP server: werkzeug's development server, its connections served by a pool of threads.

werkzeug's threaded server starts a thread for every connection, and closes every connection after one
request (it has no keep-alive), so every request paid a thread's start: about half of the server's own CPU
per request on the bench's 2-core machine (0.38-0.44 ms against 0.19-0.27 ms with a pool, for a trivial
app). The pool starts its threads as requests need them, up to ``THREADS``, and keeps them; a request that
finds them all busy waits for one instead of starting another. Everything else, the request handling, its
log lines and the startup banner, is werkzeug's ``run_simple`` without the reloader.

The threads are daemon threads, as werkzeug's are: Ctrl+C ends the server even while a client holds a
connection open without sending anything (a browser's preconnect does), which a ``ThreadPoolExecutor``'s
threads, joined at exit, would wait for.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from werkzeug.serving import ThreadedWSGIServer

THREADS = 64  # requests served at once; more than the database pool's 30 connections


class PooledWSGIServer(ThreadedWSGIServer):
    """werkzeug's threaded server, the threads taken from a pool rather than started per connection."""

    def __init__(self, host: str, port: int, app: Any, handler: Any = None, threads: int = THREADS) -> None:
        super().__init__(host, port, app, handler)
        self._limit = threads
        self._connections: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)  # one token per thread waiting for a connection
        self._started: list[threading.Thread] = []
        self._starting = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        self._connections.put((request, client_address))
        if self._idle.acquire(blocking=False):
            return  # a waiting thread takes it
        with self._starting:
            if len(self._started) < self._limit:
                thread = threading.Thread(target=self._serve_connections, daemon=True,
                                          name=f"gmpflow-http-{len(self._started) + 1}")
                self._started.append(thread)
                thread.start()

    def _serve_connections(self) -> None:
        while (connection := self._connections.get()) is not None:
            self.process_request_thread(*connection)  # werkzeug's: handles errors, closes the socket
            self._idle.release()

    def server_close(self) -> None:
        super().server_close()
        with self._starting:
            self._limit = 0  # no more threads
            for _ in self._started:
                self._connections.put(None)  # each thread ends once it is done with its connection

    @property
    def threads(self) -> list[threading.Thread]:
        """The threads started so far."""
        return list(self._started)


def serve(app: Any, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port`` until interrupted (what ``run_simple(..., threaded=True)`` did)."""
    from werkzeug._internal import _log

    server = PooledWSGIServer(host, port, app)
    server.log_startup()
    _log("info", "Press CTRL+C to quit")
    server.serve_forever()  # closes the server, and the pool with it, on its way out
