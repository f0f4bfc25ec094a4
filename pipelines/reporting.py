"""Read-side helpers of the CLI: read-only SQL, the failure-rate table, and rebuilding from the lake."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import click
import duckdb
import polars as pl
from rich.table import Table

from pipelines.ingest.channels import scan_channels
from pipelines.ingest.land import RAW_MESSAGES
from pipelines.ingest.windows import Window
from pipelines.lake import Lake
from transforms.messages import flatten_messages
from transforms.reports import failure_rates
from warehouse.store import Warehouse


def open_warehouse(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection on the published warehouse, or one clear error when there is none yet."""
    warehouse = Warehouse(data_dir)
    if not warehouse.path.exists():
        raise click.ClickException(
            f"no warehouse at {warehouse.path}: run `bird-etl demo` or `bird-etl backfill` first"
        )
    return warehouse.connect_readonly()


def run_sql(data_dir: Path, query: str) -> pl.DataFrame:
    """Run one query read-only; SQL errors become one line."""
    with open_warehouse(data_dir) as con:
        try:
            return con.sql(query).pl()
        except duckdb.Error as error:
            raise click.ClickException(str(error).splitlines()[0]) from None
        except AttributeError:
            raise click.ClickException("the statement returned no result set") from None


def failure_rate_by_channel(data_dir: Path, first: dt.date, last: dt.date) -> Table:
    """Per channel: volume, delivered, failed, pending, failure rate with its 95% interval."""
    start, end = Window.day(first).start, Window.day(last).end
    with open_warehouse(data_dir) as con:
        messages = con.sql(
            "select * from messages where created_at >= $start and created_at < $end",
            params={"start": start, "end": end},
        ).pl()
        names = con.sql("select channel_id, name from channels").pl()
    rates = (
        failure_rates(messages.lazy(), by=["channel", "platform"], start=start, end=end)
        .collect()
        .join(names, on="channel_id", how="left")
        .sort("failure_rate", descending=True)
    )
    table = Table(title=f"Failure rate by channel, {first} to {last} (UTC, by created_at)")
    for header in (
        "channel",
        "platform",
        "messages",
        "delivered",
        "failed",
        "pending",
        "failure rate",
        "95% CI",
    ):
        table.add_column(header, justify="left" if header in ("channel", "platform") else "right")
    for row in rates.iter_rows(named=True):
        table.add_row(
            row["name"] or row["channel_id"],
            row["platform"] or "?",
            f"{row['n_messages']:,}",
            f"{row['n_delivered']:,}",
            f"{row['n_failed']:,}",
            f"{row['n_pending']:,}",
            f"{row['failure_rate']:.2%}",
            f"{row['failure_rate_low']:.2%} - {row['failure_rate_high']:.2%}",
        )
    return table


def rebuild_warehouse(data_dir: Path) -> int:
    """Reload every lake partition into a fresh warehouse; returns the number of partitions."""
    lake = Lake(data_dir / "lake")
    partitions = lake.partitions(RAW_MESSAGES)

    def flattened() -> Iterator[tuple[str, dt.datetime, dt.datetime, pl.DataFrame]]:
        for workspace_id, day in partitions:
            raw = lake.scan_partition(RAW_MESSAGES, workspace_id, day)
            window = Window.day(day)
            yield (
                workspace_id,
                window.start,
                window.end,
                flatten_messages(raw, scan_channels(lake, workspace_id)).collect(),
            )

    Warehouse(data_dir).rebuild(flattened())
    return len(partitions)
