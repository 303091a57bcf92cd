"""Serve the simulator on 127.0.0.1 (a free port by default) in a background thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, make_server

from connectors.simulator.app import Counterpart, create_app


@dataclass
class RunningSimulator:
    url: str
    counterpart: Counterpart
    server: BaseWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(counterpart: Counterpart | None = None, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    state = counterpart or Counterpart()
    try:
        server = make_server(host, port, create_app(state), threaded=True)
    except SystemExit as exc:  # werkzeug exits the process when the port is taken: a caller may use another
        raise OSError(f"port {port} on {host} is in use") from exc
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="gmpflow-simulator", daemon=True)
    thread.start()
    return RunningSimulator(f"http://{host}:{server.server_port}", state, server, thread)


def main() -> None:  # python -m connectors.simulator.server [port]
    import sys

    running = serve(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8071)
    print(f"ERP/MES simulator on {running.url} (Ctrl-C stops it)")
    try:
        running.thread.join()
    except KeyboardInterrupt:
        running.stop()


if __name__ == "__main__":
    main()
