"""A real Tryton 8.2 (``trytond`` + ``trytond-production`` + ``trytond-stock-lot``) for the tests.

Session-scoped and started once: a SQLite database initialised with ``trytond-admin``, ``trytond``
serving it on 127.0.0.1 at a free port, and seed data made over JSON-RPC (a company, a finished
product with a bill of materials, stock of its materials, a lot). Nothing is installed at run time:
the packages come from the ``test`` extra. Tests that use it are marked ``tryton``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.tryton.client import TrytonClient, TrytonSettings

DATABASE = "gmpflow"
PASSWORD = "tryton-admin-S3cret!"
MODULES = ("production", "stock_lot")
START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TrytonServer:
    settings: TrytonSettings
    client: TrytonClient
    ids: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def environ(self) -> dict[str, str]:
        """The environment that points gmpflow at this Tryton (see README, Connectors)."""
        s = self.settings
        return {"GMPFLOW_TRYTON_URL": s.url, "GMPFLOW_TRYTON_DATABASE": s.database,
                "GMPFLOW_TRYTON_USER": s.user, "GMPFLOW_TRYTON_PASSWORD": s.password}

    def create_order(self, quantity: float = 10.0, *, wait: bool = True) -> dict[str, Any]:
        """A production order of the seeded product with the BoM's inputs sent explicitly (a raw RPC
        ``create`` skips the BoM explosion); ``wait`` confirms it (state ``waiting``, numbered)."""
        ids, start = self.ids, date.today() + timedelta(days=1)
        move = {"company": ids["company"], "unit": ids["unit"]}
        order_id = self.client.model("production", "create", [{
            "company": ids["company"], "warehouse": ids["warehouse"], "location": ids["production"],
            "product": ids["tablet"], "bom": ids["bom"], "unit": ids["unit"], "quantity": quantity,
            "planned_start_date": start.isoformat(), "planned_date": (start + timedelta(days=1)).isoformat(),
            "inputs": [["create", [
                {**move, "product": ids["api"], "quantity": quantity * 2, "from_location": ids["storage"],
                 "to_location": ids["production"]},
                {**move, "product": ids["excipient"], "quantity": quantity * 3,
                 "from_location": ids["storage"], "to_location": ids["production"]}]]],
            "outputs": [["create", [
                {**move, "product": ids["tablet"], "quantity": quantity, "from_location": ids["production"],
                 "to_location": ids["storage"], "unit_price": "1", "currency": ids["currency"]}]]],
        }])[0]
        if wait:
            self.client.model("production", "wait", [order_id])
        return self.read_order(order_id)

    def read_order(self, order_id: int) -> dict[str, Any]:
        return self.client.model("production", "read", [order_id],
                                 ["number", "state", "quantity", "inputs", "outputs"])[0]

    def receive_lot(self, number: str, material: str, quantity: float) -> int:
        """Receive ``quantity`` of lot ``number`` of a seeded material ("api" or "excipient") into storage, as
        a warehouse receiving a supplier's lot does; returns the lot's id (found or created)."""
        ids, client = self.ids, self.client
        domain = [["number", "=", number], ["product", "=", ids[material]]]
        found = client.model("stock.lot", "search", domain, 0, 1, None)
        lot = found[0] if found else client.model("stock.lot", "create",
                                                  [{"number": number, "product": ids[material]}])[0]
        receipt = client.model("stock.move", "create", [{
            "product": ids[material], "lot": lot, "unit": ids["unit"], "quantity": quantity,
            "from_location": ids["supplier"], "to_location": ids["storage"], "company": ids["company"],
            "unit_price": "1", "currency": ids["currency"]}])
        client.model("stock.move", "do", receipt)
        return int(lot)

    def consumers_of(self, lot: str) -> list[tuple[str, str, float]]:
        """Tryton's own answer to a recall: the done stock moves of ``lot`` into a production, as (the
        production's number, the material, the quantity)."""
        domain = [["lot.number", "=", lot], ["production_input", "!=", None], ["state", "=", "done"]]
        moves = self.client.model("stock.move", "search_read", domain, 0, None, None,
                                  ["production_input.number", "product.code", "quantity"])
        return sorted((m["production_input."]["number"], m["product."]["code"], m["quantity"]) for m in moves)

    def group(self, name: str) -> int:
        """The id of a Tryton group by its (English) name, e.g. ``Stock Cancellation``."""
        [group] = self.client.model("res.group", "search", [["name", "=", name]], 0, 2, None)
        return int(group)

    def create_user(self, login: str, password: str, groups: list[int]) -> TrytonSettings:
        """A Tryton user of the seeded company in ``groups`` (not an administrator); its settings."""
        company = self.ids["company"]
        self.client.model("res.user", "create", [{
            "name": login, "login": login, "password": password, "groups": [["add", groups]],
            "companies": [["add", [company]]], "company": company}])
        return TrytonSettings(self.settings.url, self.settings.database, login, password)

    def moves(self, move_ids: list[int]) -> list[dict[str, Any]]:
        return self.client.model("stock.move", "read", move_ids, ["product.code", "quantity", "state"])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"trytond exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"trytond did not answer within {START_TIMEOUT_SECONDS} s:\n{log.read_text()[-3000:]}")


def _seed(client: TrytonClient) -> dict[str, int]:
    def create(model: str, values: dict[str, Any]) -> int:
        return int(client.model(model, "create", [values])[0])

    def find(model: str, domain: list[Any]) -> int:
        return int(client.model(model, "search", domain, 0, 1, None)[0])

    ids: dict[str, int] = {}
    ids["currency"] = create("currency.currency", {"name": "Euro", "symbol": "€", "code": "EUR"})
    party = create("party.party", {"name": "Acme Pharma"})
    ids["company"] = create("company.company", {"party": party, "currency": ids["currency"]})
    client.model("res.user", "write", [1], {"companies": [["add", [ids["company"]]]],
                                            "company": ids["company"]})
    client._context = client.model("res.user", "get_preferences", True)  # the company is now in the context
    ids["unit"] = find("product.uom", [["symbol", "=", "u"]])
    for key, code in (("warehouse", "WH"), ("storage", "STO"), ("production", "PROD"), ("supplier", "SUP")):
        ids[key] = find("stock.location", [["code", "=", code]])

    def product(code: str, name: str, **extra: Any) -> int:
        template = create("product.template", {
            "name": name, "type": "goods", "default_uom": ids["unit"], "list_price": "1", **extra,
            "products": [["create", [{"suffix_code": code, "cost_price": "1"}]]]})
        return find("product.product", [["template", "=", template]])

    ids["tablet"] = product("TAB-100", "Paracetamol 500 mg tablet", producible=True)
    ids["api"] = product("API-001", "Paracetamol API")
    ids["excipient"] = product("EXC-002", "Microcrystalline cellulose")
    ids["bom"] = create("production.bom", {
        "name": "Paracetamol 500 mg, BoM v1",
        "inputs": [["create", [{"product": ids["api"], "quantity": 2, "unit": ids["unit"]},
                               {"product": ids["excipient"], "quantity": 3, "unit": ids["unit"]}]]],
        "outputs": [["create", [{"product": ids["tablet"], "quantity": 1, "unit": ids["unit"]}]]]})
    client.model("product.product", "write", [ids["tablet"]], {"boms": [["create", [{"bom": ids["bom"]}]]]})
    receipts = [create("stock.move", {
        "product": material, "unit": ids["unit"], "quantity": 10_000, "from_location": ids["supplier"],
        "to_location": ids["storage"], "company": ids["company"], "unit_price": "1",
        "currency": ids["currency"]}) for material in (ids["api"], ids["excipient"])]
    client.model("stock.move", "do", receipts)
    ids["lot"] = create("stock.lot", {"number": "L-2026-001", "product": ids["tablet"]})
    return ids


@pytest.fixture(scope="session")
def tryton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    """A running Tryton with seed data; skipped (with the reason) when trytond is not installed."""
    bin_dir = Path(sys.executable).parent
    admin, server = bin_dir / "trytond-admin", bin_dir / "trytond"
    if not admin.exists() or not server.exists():
        pytest.skip("Tryton tests need trytond==8.2.* and trytond-production (pip install -e '.[test]')")
    home = tmp_path_factory.mktemp("tryton")
    (home / "db").mkdir()
    (home / "db" / f"{DATABASE}.sqlite").touch()
    (home / "password").write_text(PASSWORD)
    port = free_port()
    (home / "trytond.conf").write_text(f"[database]\nuri = sqlite://\npath = {home / 'db'}\n"
                                       f"[web]\nlisten = 127.0.0.1:{port}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRYTOND_")}
    env["TRYTONPASSFILE"] = str(home / "password")
    log = home / "trytond.log"
    timings: dict[str, float] = {}
    started = time.monotonic()
    subprocess.run([str(admin), "-c", str(home / "trytond.conf"), "-d", DATABASE, "-u", *MODULES,
                    "--activate-dependencies", "--email", "admin@example.com", "--administrator"],
                   env=env, check=True, capture_output=True, timeout=300)
    timings["database_init_s"] = time.monotonic() - started
    started = time.monotonic()
    with log.open("wb") as out:
        # -d preloads the database's pool: without it, 8.2 answered the first login with KeyError 'res.user'
        process = subprocess.Popen([str(server), "-c", str(home / "trytond.conf"), "-d", DATABASE],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/", process, log)
        settings = TrytonSettings(f"http://127.0.0.1:{port}", DATABASE, "admin", PASSWORD)
        client = TrytonClient(settings)
        ids = _seed(client)
        timings["server_start_and_seed_s"] = time.monotonic() - started
        yield TrytonServer(settings, client, ids, timings)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(home, ignore_errors=True)
