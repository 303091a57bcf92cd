"""What ``gmpflow bench`` runs (the command's options are declared in ``engine/cli.py``, the CLI contract)."""

from __future__ import annotations

import json
import os

import click

from bench import load as bench_load
from bench.audit import audit_query_costs
from bench.core import render_table, run_bench
from bench.workers import POSTGRES_ENV


def run_command(as_json: bool, instances: int, audit_events: int, load: bool,
                postgres_url: str | None = None) -> None:
    if postgres_url:
        os.environ[POSTGRES_ENV] = postgres_url
    if load:
        figures_load = bench_load.load_bench()
        click.echo(json.dumps(figures_load, indent=2) if as_json else bench_load.render_load(figures_load))
        return

    figures = run_bench(instances=instances)
    text = render_table(figures)
    if audit_events:
        figures["audit_queries"] = audit_query_costs(audit_events)
        text += "\n" + "\n".join(f"audit {name}: {value}" for name, value in figures["audit_queries"].items())
    click.echo(json.dumps(figures, indent=2) if as_json else text)
