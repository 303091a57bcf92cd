"""``gmpflow bench --load``: simulated operators against a real WSGI server, on loopback only.

For each database (a fresh SQLite file; and a fresh database on the server of ``GMPFLOW_BENCH_POSTGRES_URL``
when that is set, dropped afterwards) gunicorn serves ``webapp:create_app()`` on 127.0.0.1 (a free port;
``workers`` processes of ``threads`` threads). ``operators`` threads, each signed in as its own operator,
loop: start a demo approval through the API, list the inbox (open tasks), claim the task of that instance,
complete it. The loop is bounded by a count (``cycles`` per operator) and by time (``seconds``). The
operators are spread over ``CLIENT_PROCESSES`` client processes, as real operators sit at separate tablets:
twenty threads in one Python process wait for each other's turn on the interpreter lock, and that wait
would be measured as the server's latency (it added 30 ms at p50 and 140 ms at p99 on a busy machine).

Printed: requests per second over the run, p50/p95/p99 latency of the task completion (and of all
requests), and the error count (any answer that is not the expected 2xx, or no answer). Target: p99 of the
completion under 150 ms on SQLite with 20 operators, zero errors.

Memory: the same loop first runs ``memory_warmup`` requests unmeasured (10,000 by default: each web process
keeps up to 512 live instances in its cache, and filling it grows the process by about 10 MB), then
``memory_requests`` requests (10,000 by default) while the resident set (RSS, from /proc) of the web worker
processes is sampled every 100 requests; printed is the mean of the samples over the first thousand
requests, over the last thousand, and the growth between them.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.workers import POSTGRES_ENV, _database
from engine.audit import Actor
from engine.clock import Clock
from engine.services import Gmpflow
from engine.store import Database

ROOT = Path(__file__).resolve().parents[1]
APPROVAL = ROOT / "gmp" / "processes" / "demo_approval"
PASSWORD = "load test operator password"
TARGET_P99_MS = 150.0
CLIENT_PROCESSES = 4


class _Client:
    """One operator's HTTP client: JSON in and out, on one kept-alive connection as a browser keeps one.

    A connection idle for longer than ``FRESH_AFTER`` seconds is replaced before the request: the server
    closes idle connections (gunicorn's keep-alive is 2 s), and a request sent on a closing connection
    must not be retried (it may have been applied).
    """

    FRESH_AFTER = 1.0

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base, self.token = base, token
        address = urllib.parse.urlsplit(base)
        self._host, self._port = address.hostname or "127.0.0.1", address.port
        self._connection: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any, float]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        if self._connection is not None and time.monotonic() - self._last_used > self.FRESH_AFTER:
            self._connection.close()
            self._connection = None
        started = time.perf_counter()
        connection = self._connection or http.client.HTTPConnection(self._host, self._port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            status, payload = response.status, response.read()
        except BaseException:
            connection.close()
            self._connection = None
            raise
        elapsed = time.perf_counter() - started
        self._connection, self._last_used = (None if response.will_close else connection), time.monotonic()
        if response.will_close:
            connection.close()
        return status, json.loads(payload or b"null"), elapsed

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server started as a subprocess; kill it if it has not ended after 20 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def wait_until_serving(process: subprocess.Popen[bytes], base: str, log: Path, name: str,
                       stop: Callable[[], None], seconds: float = 60) -> float:
    """Poll the server's OpenAPI document until it answers 200; its deadline (for further waiting). Raises,
    with the log's tail, when the process exits or does not answer in ``seconds`` (then ``stop``)."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with _Client(base) as client:
                if client.call("GET", "/api/v1/openapi.json")[0] == 200:
                    return deadline
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"{name} did not answer in {seconds:g} s: {log.read_text()[-2000:]}")
        time.sleep(0.1)


class _Server:
    """gunicorn serving the web app on 127.0.0.1, started as a subprocess."""

    def __init__(self, url: str, workers: int, threads: int, log: Path) -> None:
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "GMPFLOW_DATABASE_URL": url, "GMPFLOW_CHANGE_CONTROL": "off",
               "GMPFLOW_SECRET_KEY": "bench-load-secret", "PYTHONPATH": str(ROOT)}
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(gunicorn), "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}",
                 "--backlog", "256", "webapp:create_app()"],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = wait_until_serving(self.process, self.base, log, "gunicorn", self.stop)
        while len(_children(self.process.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.1)

    def worker_rss_kb(self) -> int:
        return sum(_rss_kb(pid) for pid in _children(self.process.pid))

    def stop(self) -> None:
        stop_server(self.process)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    if len(values) == 1:
        cuts = values * 99
    else:
        cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 1), "p95_ms": round(cuts[94] * 1000, 1),
            "p99_ms": round(cuts[98] * 1000, 1), "max_ms": round(max(values) * 1000, 1)}


class _Load:
    """The operators' loop, shared counters and latencies."""

    def __init__(self, base: str, tokens: list[str], max_requests: int, seconds: float,
                 on_request: Callable[[int], None] | None = None) -> None:
        self.base, self.tokens = base, tokens
        self.max_requests, self.deadline = max_requests, time.monotonic() + seconds
        self.on_request = on_request
        self.lock = threading.Lock()
        self.requests = self.errors = self.cycles = 0
        self.completions: list[float] = []
        self.latencies: list[float] = []
        self.error_samples: list[str] = []

    def _take(self) -> bool:
        """Reserve one cycle (4 requests) of the budget; False when the count or the time is used up."""
        with self.lock:
            if self.requests + 4 > self.max_requests or time.monotonic() > self.deadline:
                return False
            self.requests += 4
            return True

    def _record(self, status: int, expected: int, elapsed: float, what: str, body: Any) -> bool:
        with self.lock:
            if status:  # an answer (not a transport failure or a missing task)
                self.latencies.append(elapsed)
            count = len(self.latencies)
            ok = status == expected
            if not ok:
                self.errors += 1
                if len(self.error_samples) < 5:
                    self.error_samples.append(f"{what}: {status} {str(body)[:200]}")
        if self.on_request:
            self.on_request(count)
        return ok

    def operator(self, n: int) -> None:
        with _Client(self.base, self.tokens[n]) as client:
            self._cycles(client, n)

    def _cycles(self, client: _Client, n: int) -> None:
        cycle = 0
        while True:
            if not self._take():
                return
            cycle += 1
            try:
                status, instance, t = client.call(
                    "POST", "/api/v1/process-definitions/demo_approval/instances",
                    {"business_key": f"LOAD-{n}-{cycle}", "variables": {}})
                if not self._record(status, 201, t, "start", instance):
                    continue
                status, inbox, t = client.call("GET", "/api/v1/tasks?state=open")
                if not self._record(status, 200, t, "inbox", inbox):
                    continue
                mine = [task for task in inbox if task.get("instance_id") == instance["id"]]
                if not mine:
                    self._record(0, 1, 0.0, "inbox", f"the task of instance {instance['id']} is not listed")
                    continue
                status, body, t = client.call("POST", f"/api/v1/tasks/{mine[0]['id']}/claim")
                if not self._record(status, 200, t, "claim", body):
                    continue
                status, body, t = client.call("POST", f"/api/v1/tasks/{mine[0]['id']}/complete",
                                              {"data": {"quantity": 5, "comment": f"load {n}/{cycle}"}})
                if self._record(status, 200, t, "complete", body):
                    with self.lock:
                        self.completions.append(t)
                        self.cycles += 1
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._record(0, 1, 0.0, "transport", repr(exc))

    def run(self, operators: list[int]) -> float:
        """Run the given operators (indexes into the tokens), one thread each, until the budget is used."""
        started = time.perf_counter()
        threads = [threading.Thread(target=self.operator, args=(n % len(self.tokens),), daemon=True)
                   for n in operators]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started

    def figures(self, elapsed: float) -> dict[str, Any]:
        return {"elapsed": elapsed, "latencies": self.latencies, "completions": self.completions,
                "errors": self.errors, "error_samples": self.error_samples}


def _client_process(base: str, tokens: list[str], share: list[int], cycles: int, seconds: float,
                    start: Any, results: Any) -> None:
    start.wait()
    load = _Load(base, tokens, len(share) * cycles * 4, seconds)
    results.put(load.figures(load.run(share)))


def _timed_load(base: str, tokens: list[str], operators: int, cycles: int, seconds: float) -> dict[str, Any]:
    """The operators in client processes, started together; their figures merged."""
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no threads or sockets inherited
    shares = [list(range(first, operators, CLIENT_PROCESSES))
              for first in range(min(CLIENT_PROCESSES, operators))]
    start, results = context.Barrier(len(shares) + 1), context.Queue()
    processes = [context.Process(target=_client_process, daemon=True,
                                 args=(base, tokens, share, cycles, seconds, start, results))
                 for share in shares]
    for process in processes:
        process.start()
    try:
        start.wait(timeout=120)
        parts = [results.get(timeout=seconds + 120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    return {"elapsed": max(part["elapsed"] for part in parts),
            "latencies": [t for part in parts for t in part["latencies"]],
            "completions": [t for part in parts for t in part["completions"]],
            "errors": sum(part["errors"] for part in parts),
            "error_samples": [s for part in parts for s in part["error_samples"]][:5]}


def _prepare(url: str, operators: int) -> None:
    engine = Gmpflow(Database(url), Clock(), change_control="off")
    try:
        engine.init_database()
        engine.deploy(Actor.system(), [APPROVAL])
        for n in range(operators):
            engine.add_user(Actor.system(), f"load_op{n}", f"Load Operator {n}", PASSWORD, ["operator"])
    finally:
        engine.db.dispose()


def load_run(url: str, *, operators: int = 20, cycles: int = 50, seconds: float = 60.0,
             memory_requests: int = 10_000, memory_warmup: int = 10_000, workers: int = 2,
             threads: int = 8) -> dict[str, Any]:
    """One database: the timed operator load, then the memory run. Figures as a dict."""
    _prepare(url, operators)
    with tempfile.TemporaryDirectory() as folder:
        server = _Server(url, workers, threads, Path(folder) / "gunicorn.log")
        try:
            tokens = []
            with _Client(server.base) as client:
                for n in range(operators):
                    status, body, _ = client.call("POST", "/api/v1/tokens",
                                                  {"username": f"load_op{n}", "password": PASSWORD})
                    if status != 200:
                        raise RuntimeError(f"no token for load_op{n}: {status} {body}")
                    tokens.append(body["token"])
            load = _timed_load(server.base, tokens, operators, cycles, seconds)
            elapsed = load["elapsed"]
            figures: dict[str, Any] = {
                "operators": operators, "client_processes": min(CLIENT_PROCESSES, operators),
                "web_workers": workers, "web_threads": threads,
                "requests": len(load["latencies"]), "seconds": round(elapsed, 2),
                "requests_per_second": round(len(load["latencies"]) / elapsed, 1),
                "completions": len(load["completions"]),
                "completion": _percentiles(load["completions"]),
                "all_requests": _percentiles(load["latencies"]),
                "errors": load["errors"], "error_samples": load["error_samples"],
            }
            figures["p99_target_met"] = (figures["completion"]["p99_ms"] < TARGET_P99_MS
                                         and load["errors"] == 0)
            if memory_requests:
                figures["memory"] = _memory(server, tokens, operators, memory_requests, memory_warmup)
            return figures
        finally:
            server.stop()


def _memory(server: _Server, tokens: list[str], operators: int, requests: int, warmup: int) -> dict[str, Any]:
    if warmup:
        _Load(server.base, tokens, warmup, 3600).run(list(range(operators)))
    samples: list[tuple[int, int]] = []
    sample_lock = threading.Lock()

    def on_request(count: int) -> None:
        if count % 100 == 0:
            rss = server.worker_rss_kb()
            with sample_lock:
                samples.append((count, rss))

    samples.append((0, server.worker_rss_kb()))
    load = _Load(server.base, tokens, requests, 3600, on_request)
    elapsed = load.run(list(range(operators)))
    window = min(1000, max(100, requests // 10))
    first = [rss for count, rss in samples if count <= window]
    last = [rss for count, rss in samples if count > len(load.latencies) - window]
    first_kb, last_kb = statistics.mean(first), statistics.mean(last or first)
    return {"warmup": warmup, "requests": len(load.latencies), "seconds": round(elapsed, 2),
            "errors": load.errors, "window": window, "rss_first_kb": round(first_kb),
            "rss_last_kb": round(last_kb), "growth_kb": round(last_kb - first_kb),
            "growth_percent": round(100 * (last_kb - first_kb) / first_kb, 1),
            "error_samples": load.error_samples}


def load_bench(*, operators: int = 20, cycles: int = 50, seconds: float = 60.0, memory_requests: int = 10_000,
               memory_warmup: int = 10_000, workers: int = 2, threads: int = 8) -> dict[str, dict[str, Any]]:
    """The load figures on SQLite and, when ``GMPFLOW_BENCH_POSTGRES_URL`` is set, on PostgreSQL."""
    kinds = ["sqlite"] + (["postgres"] if os.environ.get(POSTGRES_ENV) else [])
    figures = {}
    for run, kind in enumerate(kinds, start=100):
        with _database(kind, run) as url:
            figures[kind] = load_run(url, operators=operators, cycles=cycles, seconds=seconds,
                                     memory_requests=memory_requests, memory_warmup=memory_warmup,
                                     workers=workers, threads=threads)
    return figures


def render_load(figures: dict[str, dict[str, Any]]) -> str:
    lines = []
    for kind, f in figures.items():
        c, a = f["completion"], f["all_requests"]
        lines.append(f"load {kind}: {f['operators']} operators in {f['client_processes']} client processes, "
                     f"gunicorn {f['web_workers']}x{f['web_threads']}: "
                     f"{f['requests']} requests in {f['seconds']} s = {f['requests_per_second']} requests/s; "
                     f"task completion p50 {c['p50_ms']} ms, p95 {c['p95_ms']} ms, p99 {c['p99_ms']} ms "
                     f"(max {c['max_ms']} ms, {f['completions']} completions); "
                     f"all requests p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms; errors {f['errors']}; "
                     f"target p99 < {TARGET_P99_MS:.0f} ms and no "
                     f"errors: {'met' if f['p99_target_met'] else 'NOT met'}")
        for sample in f["error_samples"]:
            lines.append(f"  error: {sample}")
        if "memory" in f:
            m = f["memory"]
            lines.append(f"memory {kind}: web workers' RSS over {m['requests']} requests after "
                         f"{m['warmup']} warm-up requests ({m['seconds']} s, "
                         f"{m['errors']} errors): first {m['window']} requests {m['rss_first_kb']} kB, last "
                         f"{m['window']} {m['rss_last_kb']} kB, growth {m['growth_kb']} kB "
                         f"({m['growth_percent']} %)")
    return "\n".join(lines)
