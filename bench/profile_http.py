"""Where the REST path's time goes: the approval of ``bench.http`` through the WSGI app in this process
(Flask's test client: every layer but the socket), the service jobs run by ``engine.worker.JobLoop`` in a
thread that the profile leaves out, profiled with cProfile.

``python -m bench.profile_http [instances]`` prints the functions by cumulative and by own time.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import time
from typing import Any

from bench.http import PASSWORD, PEOPLE, _prepare
from engine.clock import Clock
from engine.services import Gmpflow
from engine.store import Database
from engine.worker import start_background_worker


def _approval(client: Any, tokens: dict[str, dict[str, str]], n: int) -> None:
    started = client.post("/api/v1/process-definitions/demo_approval/instances",
                          json={"business_key": f"P-{n}", "variables": {}}, headers=tokens["bench_op"])
    instance_id = started.get_json()["id"]
    for username, _, data in PEOPLE:
        tasks = client.get(f"/api/v1/tasks?instance_id={instance_id}&state=open", headers=tokens[username])
        task_id = tasks.get_json()[0]["id"]
        client.post(f"/api/v1/tasks/{task_id}/claim", headers=tokens[username])
        done = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data}, headers=tokens[username])
        assert done.status_code == 200, done.get_json()
    while client.get(f"/api/v1/instances/{instance_id}/status",
                     headers=tokens["bench_op"]).get_json()["status"] != "completed":
        time.sleep(0.002)


def profile(instances: int = 100) -> pstats.Stats:
    from webapp import create_app

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        _prepare(url)
        engine = Gmpflow(Database(url), Clock(), change_control="off")
        app = create_app({"SECRET_KEY": "profile"}, engine=engine)
        worker = start_background_worker(engine)
        try:
            client = app.test_client()
            tokens = {}
            for username, _, _ in PEOPLE:
                token = client.post("/api/v1/tokens", json={"username": username, "password": PASSWORD})
                tokens[username] = {"Authorization": f"Bearer {token.get_json()['token']}"}
            for n in range(5):
                _approval(client, tokens, -1 - n)
            profiler = cProfile.Profile()
            profiler.enable()
            for n in range(instances):
                _approval(client, tokens, n)
            profiler.disable()
        finally:
            worker.shutdown()
            engine.db.dispose()
    return pstats.Stats(profiler)


if __name__ == "__main__":
    stats = profile(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
