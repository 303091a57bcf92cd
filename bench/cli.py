"""``gmpflow bench``, the harness's command of the ``gmpflow`` CLI (entry point group ``gmpflow.commands``,
and a built-in of ``engine.cli_host``), and what it runs."""

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


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--instances", default=200, type=int, help="Instances of the approval process to run.")
@click.option("--audit-events", default=0, type=int,
              help="Also time audit-trail queries on a trail of this many events (the target is 1,000,000).")
@click.option("--load", is_flag=True,
              help="Instead: 20 simulated operators against gunicorn on 127.0.0.1 (bench/load.py).")
@click.option("--postgres", "postgres_url", default=None, metavar="URL",
              help="A PostgreSQL server to time worker scaling on (default: GMPFLOW_BENCH_POSTGRES_URL or "
                   "GMPFLOW_TEST_POSTGRES_URL); the bench creates and drops its own databases there.")
def bench(as_json: bool, instances: int, audit_events: int, load: bool, postgres_url: str | None) -> None:
    """Run the benchmark workloads and print the figures."""
    run_command(as_json, instances, audit_events, load, postgres_url)
