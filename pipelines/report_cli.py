"""`bird-etl report` and `bird-etl sql`: the read-only commands, registered on the `cli` group in cli.py.

Both read the published warehouse snapshot of the data directory ($BIRD_ETL_DATA_DIR, set by `--data-dir`).
Every user mistake raises a ClickException: `pipelines.cli.main` prints it as one line and exits non-zero.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from pathlib import Path
from typing import Final

import click
import polars as pl
from rich.console import Console

from pipelines.reporting import (
    FailureReport,
    failure_report,
    open_warehouse,
    parse_by,
    parse_param_value,
    read_report_charts,
    read_report_inputs,
    report_csv,
    report_json,
    report_markdown,
    report_parquet,
    report_tables,
    report_window,
    run_sql,
    saved_query,
    saved_query_names,
    write_atomically,
)
from pipelines.resources import data_dir_from_env
from transforms.reports import GROUPINGS

FORMATS: Final = ("table", "csv", "json", "parquet", "md", "html")
DEFAULT_DAYS: Final = 7
_DAY: Final = click.DateTime(formats=["%Y-%m-%d"])


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 200)


@click.command("report")
@click.option("--start", type=_DAY, default=None, help="First UTC day (default: the 7 days ending at --end).")
@click.option("--end", type=_DAY, default=None, help="Last UTC day, included (default: yesterday).")
@click.option(
    "--by",
    default="channel",
    show_default=True,
    help=f"Comma-separated groupings, any of: {', '.join(sorted(GROUPINGS))}; empty for totals only.",
)
@click.option("--min-volume", type=click.IntRange(min=0), default=0, help="Hide groups with fewer messages.")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here (default: stdout).",
)
@click.option("--top-codes", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option(
    "--workspace",
    "workspace_ids",
    multiple=True,
    help="Only these workspace ids (repeatable; default: every workspace). Group with --by workspace.",
)
def report_command(
    start: dt.datetime | None,
    end: dt.datetime | None,
    by: str,
    min_volume: int,
    output_format: str,
    output: Path | None,
    top_codes: int,
    workspace_ids: tuple[str, ...],
) -> None:
    """Failure and delivery rates per group, with 95% intervals, top failure codes and the change against the
    previous period of the same length."""
    groupings = parse_by(by)
    last = end.date() if end else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    first = start.date() if start else last - dt.timedelta(days=DEFAULT_DAYS - 1)
    window = report_window(first, last)
    if output_format == "parquet" and output is None:
        raise click.UsageError("--format parquet needs --output PATH")
    with open_warehouse(data_dir_from_env()) as con:
        inputs = read_report_inputs(con, window, by=groupings, workspace_ids=workspace_ids)
        charts = read_report_charts(con, window, workspace_ids) if output_format == "html" else None
    report = failure_report(
        inputs,
        window,
        by=groupings,
        min_volume=min_volume,
        top_codes=top_codes,
        generated_at=dt.datetime.now(dt.UTC),
    )
    if output_format == "table" and output is None:
        _print_tables(report, _console())
        return
    if charts is not None:
        from pipelines.report_html import render_html  # matplotlib only when asked

        _emit(render_html(report, charts), output)
        return
    render = {
        "table": lambda: _tables_text(report),
        "csv": lambda: report_csv(report),
        "json": lambda: json.dumps(report_json(report), indent=2, ensure_ascii=False) + "\n",
        "parquet": lambda: report_parquet(report),
        "md": lambda: report_markdown(report),
    }
    _emit(render[output_format](), output)


def _print_tables(report: FailureReport, console: Console) -> None:
    for table in report_tables(report):
        console.print(table)


def _tables_text(report: FailureReport) -> str:
    buffer = io.StringIO()
    _print_tables(report, Console(file=buffer, width=200))
    return buffer.getvalue()


def _emit(content: str | bytes, output: Path | None) -> None:
    """Write to `output` (replacing it whole) or to stdout."""
    if output is None:
        click.echo(content, nl=False)
        return
    try:
        write_atomically(output, content)
    except OSError as error:
        raise click.ClickException(f"cannot write {output}: {error.strerror}") from None
    click.echo(f"report written to {output}", err=True)


def _param(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, object]:
    params: dict[str, object] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        params[name.strip()] = parse_param_value(value)
    return params


@click.command("sql")
@click.argument("query", required=False)
@click.option("--saved", "saved_name", default=None, help="Run the saved query warehouse/queries/NAME.sql.")
@click.option(
    "--param",
    "params",
    multiple=True,
    callback=_param,
    metavar="NAME=VALUE",
    help="Bind $NAME (repeatable); dates bind as dates, numbers as numbers, else text.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@click.option("--list", "list_saved", is_flag=True, help="List the saved queries and exit.")
def sql_command(
    query: str | None, saved_name: str | None, params: dict[str, object], as_csv: bool, list_saved: bool
) -> None:
    """Run a read-only SQL QUERY (or a saved one) against the warehouse; values are bound, never pasted in."""
    if list_saved:
        click.echo("\n".join(saved_query_names()))
        return
    if (query is None) == (saved_name is None):
        raise click.UsageError("give either a QUERY or --saved NAME")
    text = saved_query(saved_name) if saved_name else str(query)
    frame = run_sql(data_dir_from_env(), text, params)
    if as_csv:
        click.echo(frame.write_csv(), nl=False)
        return
    with pl.Config(tbl_rows=200, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
        _console().print(frame)
