"""``gmpflow run``'s HTTP server: werkzeug's development server, its connections served by a pool of threads.

werkzeug's threaded server starts a thread for every connection, and closes every connection after one
request (it has no keep-alive), so every request paid a thread's start: about half of the server's own CPU
per request on the bench's 2-core machine (0.38-0.44 ms against 0.19-0.27 ms with a pool, for a trivial
app). The pool starts its threads as requests need them, up to ``THREADS``, and keeps them; a request that
finds them all busy waits for one instead of starting another. Everything else, the request handling, its
log lines and the startup banner, is werkzeug's ``run_simple`` without the reloader.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from werkzeug.serving import ThreadedWSGIServer

THREADS = 64  # requests served at once; more than the database pool's 30 connections


class PooledWSGIServer(ThreadedWSGIServer):
    """werkzeug's threaded server, the threads taken from a pool rather than started per connection."""

    def __init__(self, host: str, port: int, app: Any, handler: Any = None, threads: int = THREADS) -> None:
        super().__init__(host, port, app, handler)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="gmpflow-http")

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self.process_request_thread, request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def serve(app: Any, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port`` until interrupted (what ``run_simple(..., threaded=True)`` did)."""
    from werkzeug._internal import _log

    server = PooledWSGIServer(host, port, app)
    server.log_startup()
    _log("info", "Press CTRL+C to quit")
    server.serve_forever()  # closes the server, and the pool with it, on its way out
