"""``gmpflow bench``, over HTTP: the approval process driven by one client against ``gmpflow run``.

``gmpflow run`` is what a user starts with default settings: the web app on the real WSGI server
(waitress: a pool of request threads, keep-alive; ``webapp.server``) with the job worker in the process.
It serves a fresh SQLite file on 127.0.0.1.
One client, its own process, signed in as an operator, a supervisor and QA (one token each), runs each
approval to its end as a person and an ERP would: start it, and for each of the three user tasks list the
instance's open task, claim it and complete it; then read the instance until it is completed (the service
task runs on the worker). Figures:

- ``instances_per_s``: approvals carried to ``completed`` per second, one after the other;
- ``completion_p50_ms``: the median answer time of a task completion;
- ``cpu_ms_per_instance``: the server process's CPU (user + system, from /proc) per approval;
- ``service_task_latency_p50_ms``: the median time from the commit that made the service job due to the
  job's completion, from the job rows (their ``created_at`` and ``updated_at``, on the server's clock).

``root`` runs the server from another checkout (the same database and client), so a change is compared
with its base in one run, interleaved.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.load import _Client, _free_port, stop_server, wait_until_serving
from engine.audit import Actor
from engine.clock import Clock
from engine.services import Gmpflow
from engine.store import Database

ROOT = Path(__file__).resolve().parents[1]
APPROVAL = ROOT / "gmp" / "processes" / "demo_approval"
PASSWORD = "http bench password"
PEOPLE = (("bench_op", "operator", {"quantity": 5, "comment": "bench"}),
          ("bench_sup", "supervisor", {"accepted": True}),
          ("bench_qa", "qa", {"accepted": True}))
STATUS_PAUSE = 0.002  # seconds between two reads of an instance waiting on its service task


def _prepare(url: str) -> None:
    engine = Gmpflow(Database(url), Clock(), change_control="off")
    try:
        engine.init_database()
        engine.deploy(Actor.system(), [APPROVAL])
        for username, role, _ in PEOPLE:
            engine.add_user(Actor.system(), username, username, PASSWORD, [role])
    finally:
        engine.db.dispose()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class _RunServer:
    """``gmpflow run`` on a free port of 127.0.0.1, from ``root``."""

    def __init__(self, url: str, root: Path, log: Path) -> None:
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "GMPFLOW_DATABASE_URL": url, "GMPFLOW_CHANGE_CONTROL": "off",
               "GMPFLOW_SECRET_KEY": "bench-http-secret", "PYTHONPATH": str(root)}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "engine.cli", "run", "--host", "127.0.0.1", "--port", str(port)],
                env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until_serving(self.process, self.base, log, "gmpflow run", self.stop)

    def stop(self) -> None:
        stop_server(self.process)


def _expect(answer: tuple[int, Any, float], status: int, what: str) -> Any:
    if answer[0] != status:
        raise RuntimeError(f"{what}: {answer[0]} {answer[1]}")
    return answer[1]


def _one_approval(clients: dict[str, _Client], n: int, completions: list[float]) -> None:
    operator = clients["bench_op"]
    instance = _expect(operator.call("POST", "/api/v1/process-definitions/demo_approval/instances",
                                     {"business_key": f"HTTP-{n}", "variables": {}}), 201, "start")
    for username, _, data in PEOPLE:
        client = clients[username]
        tasks = _expect(client.call("GET", f"/api/v1/tasks?instance_id={instance['id']}&state=open"), 200,
                        "inbox")
        task_id = tasks[0]["id"]
        _expect(client.call("POST", f"/api/v1/tasks/{task_id}/claim"), 200, "claim")
        answer = client.call("POST", f"/api/v1/tasks/{task_id}/complete", {"data": data})
        _expect(answer, 200, "complete")
        completions.append(answer[2])
    while _status(operator, instance["id"]) != "completed":
        time.sleep(STATUS_PAUSE)


def _status(client: _Client, instance_id: int) -> str:
    """The instance's status from ``/status``; from the detail on a server without that route (a base)."""
    answer = client.call("GET", f"/api/v1/instances/{instance_id}/status")
    if answer[0] == 404 and answer[1].get("code") != "instance_not_found":
        answer = client.call("GET", f"/api/v1/instances/{instance_id}")
    return str(_expect(answer, 200, "status")["status"])


def _service_latencies_ms(url: str) -> list[float]:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT created_at, updated_at FROM job WHERE kind = 'service' "
                                     "AND state = 'done'")).all()
    finally:
        db.dispose()
    as_time = _parse_time
    return [(as_time(done) - as_time(made)).total_seconds() * 1000 for made, done in rows]


def _parse_time(value: Any) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _approvals(base: str, tokens: dict[str, str], numbers: range) -> list[float]:
    """One client (its own connections, one approval after the other); the completions' answer times."""
    clients = {username: _Client(base, token) for username, token in tokens.items()}
    completions: list[float] = []
    try:
        for n in numbers:
            _one_approval(clients, n, completions)
    finally:
        for client in clients.values():
            client.close()
    return completions


def _client_process(base: str, tokens: dict[str, str], numbers: range, results: Any) -> None:
    results.put(_approvals(base, tokens, numbers))


def _concurrent_approvals(base: str, tokens: dict[str, str], instances: int, clients: int) -> list[float]:
    """``clients`` processes (a client in a thread would share the bench's GIL), each with its share."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    share = -(-instances // clients)
    shares = [range(c * share, min(instances, (c + 1) * share)) for c in range(clients)]
    processes = [context.Process(target=_client_process, args=(base, tokens, numbers, results))
                 for numbers in shares]
    for process in processes:
        process.start()
    completions = [answer for _ in processes for answer in results.get(timeout=600)]
    for process in processes:
        process.join(60)
        if process.exitcode != 0:
            raise RuntimeError(f"a bench client exited with {process.exitcode}")
    return completions


def http_run(instances: int = 100, warmup: int = 5, root: Path = ROOT, clients: int = 1) -> dict[str, Any]:
    """One server, ``clients`` clients at once (each its own process past the first): the figures of the
    module's docstring."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        _prepare(url)
        server = _RunServer(url, root, Path(folder) / "run.log")
        try:
            tokens = {}
            for username, _, _ in PEOPLE:
                with _Client(server.base) as client:
                    body = _expect(client.call("POST", "/api/v1/tokens",
                                               {"username": username, "password": PASSWORD}), 200, "token")
                tokens[username] = body["token"]
            _approvals(server.base, tokens, range(-warmup, 0))
            cpu_before, started = _cpu_seconds(server.process.pid), time.perf_counter()
            if clients == 1:
                completions = _approvals(server.base, tokens, range(instances))
            else:
                completions = _concurrent_approvals(server.base, tokens, instances, clients)
            elapsed = time.perf_counter() - started
            cpu = _cpu_seconds(server.process.pid) - cpu_before
        finally:
            server.stop()
        latencies = _service_latencies_ms(url)
    return {"instances": instances, "clients": clients, "seconds": round(elapsed, 3),
            "instances_per_s": round(instances / elapsed, 1),
            "completion_p50_ms": round(statistics.median(completions) * 1000, 2),
            "cpu_ms_per_instance": round(cpu * 1000 / instances, 1),
            "service_task_latency_p50_ms": round(statistics.median(latencies), 1),
            "server": str(root)}


if __name__ == "__main__":  # python -m bench.http [instances] [other checkout, interleaved] [--clients N]
    import json

    arguments = sys.argv[1:]
    at = arguments.index("--clients") if "--clients" in arguments else None
    concurrent = int(arguments[at + 1]) if at is not None else 1
    if at is not None:
        del arguments[at:at + 2]
    count = int(arguments[0]) if arguments else 100
    roots = [ROOT] + [Path(p) for p in arguments[1:]]
    for round_ in range(3):
        for checkout in roots:
            figures = http_run(count, root=checkout, clients=concurrent)
            print(json.dumps({"round": round_, **figures}), flush=True)
