"""Where the server's CPU goes under ``bench.http``'s client: ``gmpflow run``'s server (``webapp.server``,
waitress, the worker in the same process) in a child process under cProfile (CPU time of the thread, so a
keep-alive wait costs nothing), driven over real sockets by the bench's client. Two profiles, added up: the
app in the request threads, and waitress's loop thread, which reads, parses and writes the connections.

Unlike ``bench.profile_http`` (Flask's test client in process) this counts the server's HTTP parsing and
response writing and leaves out the test client's own work. The worker thread is not profiled; the summary
line gives the process's CPU, the request threads' share and the rest (the loop and the worker).

Read the blocking socket calls with care: on this VM cProfile under ``time.thread_time`` can charge one of a
request's waits about 1-2 ms, which ``/proc``'s CPU figures do not show.

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
    """The child: ``gmpflow run``'s server with each request and its loop profiled, the stats written on
    SIGTERM."""
    from engine.worker import start_background_worker
    from webapp import create_app
    from webapp.server import make_server

    in_requests, in_loop = cProfile.Profile(time.thread_time), cProfile.Profile(time.thread_time)
    lock = threading.Lock()
    request_cpu = [0.0]
    app = create_app()

    def profiled(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with lock:  # one profiler for every request thread: a request at a time (the bench's client is one)
            started = time.thread_time()
            in_requests.enable()
            try:
                return list(app(environ, start_response))  # the body produced here, not in the server
            finally:
                in_requests.disable()
                request_cpu[0] += time.thread_time() - started

    def dump(*_: Any) -> None:  # runs in the main thread, the loop's
        in_loop.disable()
        stats = pstats.Stats(in_requests)
        stats.add(in_loop)
        stats.dump_stats(out)
        Path(out + ".cpu").write_text(f"{request_cpu[0]}\n")
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    scheduler = start_background_worker(app.extensions["gmpflow"])
    try:
        in_loop.runcall(make_server(profiled, "127.0.0.1", port).run)
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
               f"server CPU {cpu * 1000 / instances:.1f} ms per approval; the app in request threads "
               f"(warm-up included) {request_cpu * 1000 / (instances + warmup):.1f} ms per approval")
    return stats, summary


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        _serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        result, line = profile(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
        result.sort_stats("cumulative").print_stats(60)
        result.sort_stats("tottime").print_stats(40)
        print(line)
