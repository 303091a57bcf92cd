"""Helpers for tests that kill real ``gmpflow`` processes (holds no tests).

- :class:`Counterpart`: an HTTP server on 127.0.0.1 that applies each idempotency key once, counts every
  call, and can hold a call open until the test has killed the caller.
- :func:`plugin_path`: a folder that, put on ``PYTHONPATH``, makes ``tests.crash_plugin`` an installed
  connector (a distribution with an entry point in ``gmpflow.connectors``), as a third-party one would be.
- Starting, killing and stopping ``gmpflow`` processes with a given database and failpoint.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pluggy

from connectors.plugins import build_registry, plugin_manager
from engine.operations import OperationRegistry
from tests import crash_plugin
from tests.conftest import ROOT

GMPFLOW = Path(sys.executable).parent / "gmpflow"


class Counterpart:
    """The far side of ``crash.apply``: applies each idempotency key once and answers the stored result.

    ``hold_first``: the first call is applied, then held open (``arrived`` is set) until ``release``.
    """

    def __init__(self, *, hold_first: bool = False) -> None:
        self.calls: Counter[str] = Counter()      # idempotency key -> calls received
        self.applied: Counter[str] = Counter()    # idempotency key -> times the effect was applied
        self.results: dict[str, dict[str, Any]] = {}
        self.hold_first, self.arrived, self.release = hold_first, threading.Event(), threading.Event()
        self._lock = threading.Lock()
        counterpart = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers["Idempotency-Key"]
                hold = False
                with counterpart._lock:
                    counterpart.calls[key] += 1
                    if key not in counterpart.results:
                        counterpart.applied[key] += 1
                        counterpart.results[key] = {"item": body["item"],
                                                    "receipt": len(counterpart.results) + 1}
                        hold, counterpart.hold_first = counterpart.hold_first, False
                    result = counterpart.results[key]
                if hold:
                    counterpart.arrived.set()
                    counterpart.release.wait(60)
                payload = json.dumps(result).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the caller died while we held its call
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def plugin_path(folder: Path) -> Path:
    """A folder holding the metadata of an installed distribution whose ``gmpflow.connectors`` entry point
    is ``tests.crash_plugin``; a ``gmpflow`` process with it on ``PYTHONPATH`` loads the plugin."""
    dist = folder / "gmpflow_crash_test_plugin-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gmpflow-crash-test-plugin\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[gmpflow.connectors]\ncrash = tests.crash_plugin\n")
    return folder


def registry_with_plugin(counterpart_url: str) -> OperationRegistry:
    """The registry the subprocesses build, for the test's own engine (deploy lints the operation)."""
    pm: pluggy.PluginManager = plugin_manager(load_entry_points=False)
    pm.register(crash_plugin, name="tests.crash_plugin")
    return build_registry({**os.environ, crash_plugin.URL_SETTING: counterpart_url}, pm=pm)


def gmpflow_env(database_url: str, plugins: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GMPFLOW_") or k == "GMPFLOW_TEST_POSTGRES_URL"}
    env.update(GMPFLOW_DATABASE_URL=database_url, GMPFLOW_CHANGE_CONTROL="off", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(str(p) for p in (plugins, ROOT) if p))
    env.update(extra)
    return env


def start(args: list[str], env: dict[str, str], log: Path,
          failpoint: str | None = None) -> subprocess.Popen[bytes]:
    """Start ``gmpflow ARGS`` with its output in ``log``; ``failpoint`` arms ``GMPFLOW_FAILPOINT``."""
    env = dict(env)
    if failpoint:
        env["GMPFLOW_FAILPOINT"] = failpoint
    with log.open("ab") as out:
        return subprocess.Popen([str(GMPFLOW), *args], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a process the test started (SIGTERM, then SIGKILL after 10 s)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            kill(process)


def wait_until(check: Callable[[], Any], timeout: float, what: str, log: Path | None = None) -> Any:
    """Poll ``check`` every 0.1 s until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tail}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def audit_verify(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(GMPFLOW), "audit", "verify"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def http_json(method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None,
              timeout: float = 10) -> tuple[int, Any]:
    """One JSON request; returns (status, decoded body). Raises OSError when the server is gone."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def serve_web(args: list[str], env: dict[str, str], log: Path,
              port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start a web process (``args`` for ``gmpflow``, or a full command) and wait until it answers."""
    base = f"http://127.0.0.1:{port}"
    if args[0].startswith("/"):
        with log.open("ab") as out:
            process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
    else:
        process = start(args, env, log)

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the web process exited with {process.returncode}\n"
                                 f"{log.read_text()[-3000:]}")
        try:
            return http_json("GET", f"{base}/api/v1/openapi.json", timeout=1)[0] == 200
        except OSError:
            return False

    wait_until(up, 30, "the web process to answer", log)
    return process, base
