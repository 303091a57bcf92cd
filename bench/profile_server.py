"""Where the server's CPU goes under ``bench.http``'s client: ``gmpflow run``'s server (``webapp.server``,
the worker in the same process) in a child process whose request threads run under cProfile (CPU time of
the thread, so a keep-alive wait costs nothing), driven over real sockets by the bench's client.

Unlike ``bench.profile_http`` (Flask's test client in process) this counts werkzeug's HTTP parsing and
response writing and leaves out the test client's own work. The worker thread is not profiled; the summary
line gives the process's CPU, the request threads' share and the worker's rest.

Read the blocking socket calls with care: on this VM cProfile under ``time.thread_time`` charges one of a
request's waits (``poll``, ``read`` or ``sendall``, whichever comes first) about 1-2 ms, which ``/proc``'s
CPU figures do not show (a werkzeug request on a trivial app costs 0.36-0.42 ms of CPU in all).

``python -m bench.profile_server [instances] [sort]`` prints the functions by cumulative and by own time.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.http import PASSWORD, PEOPLE, _cpu_seconds, _expect, _one_approval, _prepare
from bench.load import _Client, _free_port, stop_server, wait_until_serving


def _serve(url: str, port: int, out: str) -> None:
    """The child: ``gmpflow run``'s server with each request profiled, the stats written on SIGTERM."""
    from werkzeug.serving import WSGIRequestHandler

    from engine.worker import start_background_worker
    from webapp import create_app
    from webapp.server import PooledWSGIServer

    profiler, lock = cProfile.Profile(time.thread_time), threading.Lock()
    request_cpu = [0.0]

    class Profiled(WSGIRequestHandler):
        def run_wsgi(self) -> None:
            with lock:
                started = time.thread_time()
                profiler.enable()
                try:
                    super().run_wsgi()
                finally:
                    profiler.disable()
                    request_cpu[0] += time.thread_time() - started

    def dump(*_: Any) -> None:
        profiler.dump_stats(out)
        Path(out + ".cpu").write_text(f"{request_cpu[0]}\n")
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    app = create_app()
    scheduler = start_background_worker(app.extensions["gmpflow"])
    try:
        PooledWSGIServer("127.0.0.1", port, app, Profiled).serve_forever()
    finally:
        scheduler.shutdown(wait=False)


def profile(instances: int = 100, warmup: int = 5) -> tuple[pstats.Stats, str]:
    with tempfile.TemporaryDirectory() as folder:
        url, out, port = f"sqlite:///{folder}/bench.db", f"{folder}/server.prof", _free_port()
        _prepare(url)
        env = {**os.environ, "GMPFLOW_DATABASE_URL": url, "GMPFLOW_CHANGE_CONTROL": "off",
               "GMPFLOW_SECRET_KEY": "bench-http-secret", "GMPFLOW_SIMULATOR": "off"}
        log = Path(folder) / "serve.log"
        with log.open("ab") as sink:
            command = [sys.executable, "-m", "bench.profile_server", "--serve", url, str(port), out]
            process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(process, base, log, "profiled server", lambda: stop_server(process))
        clients = {}
        for username, _, _ in PEOPLE:
            with _Client(base) as client:
                sign_in = {"username": username, "password": PASSWORD}
                body = _expect(client.call("POST", "/api/v1/tokens", sign_in), 200, "token")
            clients[username] = _Client(base, body["token"])
        for n in range(warmup):
            _one_approval(clients, -1 - n, [])
        cpu_before, started = _cpu_seconds(process.pid), time.perf_counter()
        for n in range(instances):
            _one_approval(clients, n, [])
        elapsed, cpu = time.perf_counter() - started, _cpu_seconds(process.pid) - cpu_before
        for client in clients.values():
            client.close()
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        stats = pstats.Stats(out)
        if os.environ.get("GMPFLOW_PROFILE_OUT"):
            stats.dump_stats(os.environ["GMPFLOW_PROFILE_OUT"])
        request_cpu = float(Path(out + ".cpu").read_text())
    summary = (f"{instances} approvals in {elapsed:.2f} s ({instances / elapsed:.1f}/s, profiled); "
               f"server CPU {cpu * 1000 / instances:.1f} ms per approval; request threads (warm-up included) "
               f"{request_cpu * 1000 / (instances + warmup):.1f} ms per approval")
    return stats, summary


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        _serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        result, line = profile(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
        result.sort_stats("cumulative").print_stats(60)
        result.sort_stats("tottime").print_stats(40)
        print(line)
