"""An asyncua OPC UA server with a small equipment model, on 127.0.0.1 at a free port, in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from connectors.opcua.plugin import DEFAULT_NAMESPACE
from tests.tryton_server import free_port

EQUIPMENT = {
    "GRAN-01": {"Status": "available", "CalibrationDue": datetime(2027, 1, 31, tzinfo=timezone.utc),
                "CurrentBatch": ""},
    "COMP-02": {"Status": "in_use", "CalibrationDue": datetime(2026, 11, 30, tzinfo=timezone.utc),
                "CurrentBatch": "B-2026-042"},
}


class EquipmentServer:
    def __init__(self) -> None:
        self.url = f"opc.tcp://127.0.0.1:{free_port()}/gmpflow/"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None  # set in the server's loop, once it runs
        self._thread = threading.Thread(target=self._run, name="opcua-server", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the fixture
            self.error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        from asyncua import Server

        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        ns = await server.register_namespace(DEFAULT_NAMESPACE)
        folder = await server.nodes.objects.add_folder(ns, "Equipment")
        for equipment, variables in EQUIPMENT.items():
            node = await folder.add_object(ns, equipment)
            for name, value in variables.items():
                await node.add_variable(ns, name, value)
        self._stop = stop = asyncio.Event()
        async with server:
            self._ready.set()
            await stop.wait()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self.error:
            raise self.error

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


@pytest.fixture(scope="session")
def opcua_equipment() -> Iterator[EquipmentServer]:
    server = EquipmentServer()
    server.start()
    yield server
    server.stop()
