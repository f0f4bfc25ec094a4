"""Read side of the archive: the failure-rate report (data, JSON, markdown, tables), read-only SQL, and
rebuilding the warehouse from the lake.

The numbers come from `transforms.reports` over the message counts DuckDB reads from the warehouse; this
module only reads, labels and formats them. The JSON form is a stable contract, documented in
docs/report-json.md.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import click
import duckdb
import polars as pl
from rich.table import Table

from pipelines.ingest.interactions import RAW_INTERACTIONS
from pipelines.ingest.land import RAW_MESSAGES
from pipelines.ingest.windows import Window
from pipelines.lake import lake_from_env
from pipelines.loading import lake_partitions
from transforms import vocabulary
from transforms.reports import (
    GROUPINGS,
    METRIC_COLUMNS,
    compare_periods,
    counted_columns,
    failure_rates,
    top_failure_codes,
    wilson_interval,
)
from warehouse import sqlfiles
from warehouse.sqlfiles import PACKAGE_DIR
from warehouse.store import Warehouse

REPORT_SCHEMA: Final = "bird-etl/failure-rate-report"
REPORT_SCHEMA_VERSION: Final = 1
CONFIDENCE_LEVEL: Final = 0.95
QUERIES_DIR: Final = PACKAGE_DIR / "queries"

# The groupings the charts draw: failure rate per day and per country, by channel.
_CHART_GROUPINGS: Final = ("day", "country", "channel")
# The measures of every report row (groups and totals), in the order the CSV and Parquet forms carry them.
REPORT_METRIC_COLUMNS: Final = (
    "n_messages",
    "n_delivered",
    "n_failed",
    "n_pending",
    "failure_rate",
    "failure_rate_low",
    "failure_rate_high",
    "delivery_rate",
    "delivery_rate_low",
    "delivery_rate_high",
    "previous_n_messages",
    "previous_n_failed",
    "previous_failure_rate",
    "failure_rate_change_pp",
)
# Label columns added beside a grouping, so a reader sees names rather than uuids and codes.
_LABELS: Final = {"channel": ("channel_id", "channel_name"), "failure_code": ("failure_code", "failure_name")}


# -- reading ------------------------------------------------------------------------------------------------


def open_warehouse(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection on the published warehouse, or one clear error when there is none yet.

    File access is switched off (and locked) after attaching, so no statement can read or write other files.
    """
    warehouse = Warehouse(data_dir)
    if not warehouse.path.exists():
        raise click.ClickException(
            f"no warehouse at {warehouse.path}: run `bird-etl demo` or `bird-etl backfill` first"
        )
    con = warehouse.connect_readonly()
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")
    return con


def run_sql(data_dir: Path, query: str, params: Mapping[str, object] | None = None) -> pl.DataFrame:
    """Run one query read-only with bound `params`; SQL errors become one line."""
    with open_warehouse(data_dir) as con:
        try:
            statements = con.extract_statements(query)
            if len(statements) != 1:
                raise click.ClickException(f"expected one SQL statement, got {len(statements)}")
            needed = statements[0].named_parameters
            given = set(params or {})
            if needed != given:
                raise click.ClickException(_parameter_mismatch(needed, given))
            return con.sql(query, params=dict(params) if params else None).pl()
        except duckdb.Error as error:
            raise click.ClickException(str(error).splitlines()[0]) from None
        except AttributeError:
            raise click.ClickException("the statement returned no result set") from None


def _parameter_mismatch(needed: set[str], given: set[str]) -> str:
    problems = []
    if needed - given:
        problems.append(f"missing --param {', '.join(sorted(needed - given))}")
    if given - needed:
        problems.append(f"unused --param {', '.join(sorted(given - needed))}")
    return "; ".join(problems) + (f" (the query takes: {', '.join(sorted(needed))})" if needed else "")


def saved_query_names() -> list[str]:
    """Names of the saved queries in warehouse/queries (file names without .sql)."""
    return sorted(path.stem for path in QUERIES_DIR.glob("*.sql"))


def saved_query(name: str) -> str:
    """The SQL text of a saved query, or one clear error naming the ones that exist."""
    if name not in saved_query_names():
        raise click.ClickException(
            f"no saved query {name!r}; saved queries: {', '.join(saved_query_names())}"
        )
    return (QUERIES_DIR / f"{name}.sql").read_text()


def parse_param_value(text: str) -> object:
    """A --param value as the SQL type it reads as: integer, number, date, timestamp, else text.

    A date binds as a DATE, which DuckDB compares with `timestamptz` columns as UTC midnight (the
    read-only connection runs in UTC), so `start=2026-11-18` means the half-open window starts then.
    """
    for parse in (int, float, dt.date.fromisoformat, dt.datetime.fromisoformat):
        try:
            value = parse(text)
        except ValueError:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value
    return text


@dataclass(frozen=True)
class ReportInputs:
    """What a report reads from the warehouse: the message counts of the report and previous windows (the
    grain of transforms.reports.message_counts), and labels."""

    message_counts: pl.DataFrame
    channels: pl.DataFrame  # channel_id, channel_name
    failure_codes: pl.DataFrame  # the failure_codes relation


def read_message_counts(
    con: duckdb.DuckDBPyConnection, window: Window, *, by: Sequence[str], workspace_ids: Sequence[str] = ()
) -> pl.DataFrame:
    """transforms.reports.message_counts of the messages created in the window (of these workspaces, if
    given), for reports grouped `by`: DuckDB counts them, so polars gets thousands of rows, not millions."""
    return sqlfiles.query(
        con,
        "report_message_counts",
        start=window.start,
        end=window.end,
        columns=counted_columns(by),
        workspaces=list(workspace_ids),
    )


def read_report_inputs(
    con: duckdb.DuckDBPyConnection, window: Window, *, by: Sequence[str], workspace_ids: Sequence[str] = ()
) -> ReportInputs:
    """Message counts of the window and of the previous window of the same width, plus the labels."""
    return ReportInputs(
        message_counts=read_message_counts(
            con, Window(previous_window(window).start, window.end), by=by, workspace_ids=workspace_ids
        ),
        channels=_channel_names(con),
        failure_codes=con.sql("select * from failure_codes").pl(),
    )


def _channel_names(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(
        "select channel_id, any_value(name) as channel_name from channels group by channel_id"
    ).pl()


@dataclass(frozen=True)
class ReportCharts:
    """The frames behind the report's charts, over the report's window."""

    daily_by_channel: pl.DataFrame  # day, channel, n_messages, n_failed, failure_rate
    country_by_channel: pl.DataFrame  # country, channel, n_messages, n_failed, failure_rate
    delivery_seconds: pl.DataFrame  # platform, delivery_seconds of delivered outgoing messages


def read_report_charts(
    con: duckdb.DuckDBPyConnection, window: Window, workspace_ids: Sequence[str] = ()
) -> ReportCharts:
    """The chart frames of the window; channels carry their names. Only the HTML form draws charts."""
    counts = read_message_counts(con, window, by=_CHART_GROUPINGS, workspace_ids=workspace_ids).lazy()
    names = _channel_names(con).lazy()

    def by_channel(grouping: str) -> pl.DataFrame:
        rates = failure_rates(counts, by=[grouping, "channel"], start=window.start, end=window.end)
        return (
            rates.join(names, on="channel_id", how="left")
            .select(
                pl.all().exclude("channel_id", "channel_name"),
                channel=pl.coalesce("channel_name", "channel_id"),
            )
            .collect()
        )

    delivered = sqlfiles.query(
        con,
        "report_delivery_seconds",
        start=window.start,
        end=window.end,
        workspaces=list(workspace_ids),
        delivered_statuses=sorted(vocabulary.DELIVERED_STATUSES),
    )
    countries = by_channel("country").with_columns(pl.col("country_code").fill_null("no phone"))
    return ReportCharts(
        daily_by_channel=by_channel("day"),
        country_by_channel=countries.rename({"country_code": "country"}),
        delivery_seconds=delivered,
    )


def previous_window(window: Window) -> Window:
    """The window of the same width that ends where `window` starts: the baseline of the change columns."""
    return Window(window.start - window.width, window.start)


def report_window(first: dt.date, last: dt.date) -> Window:
    """The half-open UTC window covering the days `first` .. `last` (both included)."""
    if last < first:
        raise click.BadParameter(f"--end {last} is before --start {first}")
    return Window(Window.day(first).start, Window.day(last).end)


# -- the report ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureReport:
    """A failure-rate report: one row per group, totals, and the top failure codes, over one window.

    `groups` and `totals` hold the metrics of transforms.reports (failure_rate with its Wilson interval),
    delivery_rate_low/high, the previous window's volume, failures and rate, and failure_rate_change_pp.
    """

    window: Window
    previous: Window
    by: tuple[str, ...]
    min_volume: int
    groups: pl.DataFrame
    totals: pl.DataFrame
    top_failure_codes: pl.DataFrame
    generated_at: dt.datetime

    @property
    def group_columns(self) -> list[str]:
        return [name for name in self.groups.columns if name not in REPORT_METRIC_COLUMNS]


def parse_by(text: str) -> tuple[str, ...]:
    """`channel,country` -> ("channel", "country"); unknown or repeated names are one clear error."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in GROUPINGS]
    if unknown:
        raise click.BadParameter(
            f"unknown grouping {', '.join(unknown)}; choose from {', '.join(sorted(GROUPINGS))}",
            param_hint="--by",
        )
    if len(set(names)) != len(names):
        raise click.BadParameter(f"{text!r} names a grouping twice", param_hint="--by")
    return names


def failure_report(
    inputs: ReportInputs,
    window: Window,
    *,
    by: Sequence[str],
    min_volume: int = 0,
    top_codes: int = 10,
    generated_at: dt.datetime,
) -> FailureReport:
    """The report of `window` grouped `by`, compared with the previous window of the same width.

    Groups under `min_volume` messages in the window are left out; a group seen only in the previous window
    is left out too (it has nothing to report now).
    """
    previous = previous_window(window)
    counts = inputs.message_counts.lazy()

    def compared(grouping: Sequence[str]) -> pl.DataFrame:
        current = failure_rates(
            counts, by=grouping, start=window.start, end=window.end, min_volume=min_volume
        ).collect()
        earlier = failure_rates(counts, by=grouping, start=previous.start, end=previous.end).collect()
        if not grouping:
            # Without keys compare_periods pairs the two totals rows side by side, so a period without
            # messages needs its (all-null) row: the comparison is then null rather than an error.
            current, earlier = (frame if len(frame) else frame.clear(1) for frame in (current, earlier))
        keys = [name for name in current.columns if name not in METRIC_COLUMNS]
        return (
            compare_periods(current.lazy(), earlier.lazy())
            .filter(pl.col("n_messages").is_not_null())
            .with_columns(_delivery_interval())
            .select(*keys, *REPORT_METRIC_COLUMNS)
            .collect()
        )

    top = top_failure_codes(
        counts, inputs.failure_codes.lazy(), start=window.start, end=window.end, n=top_codes
    ).collect()
    return FailureReport(
        window=window,
        previous=previous,
        by=tuple(by),
        min_volume=min_volume,
        groups=_with_labels(compared(by), inputs, by),
        totals=compared([]),
        top_failure_codes=top,
        generated_at=generated_at,
    )


def _delivery_interval() -> list[pl.Expr]:
    low, high = wilson_interval(pl.col("n_delivered"), pl.col("n_messages"))
    return [low.alias("delivery_rate_low"), high.alias("delivery_rate_high")]


def _with_labels(groups: pl.DataFrame, inputs: ReportInputs, by: Sequence[str]) -> pl.DataFrame:
    """Adds channel_name after channel_id and failure_name after failure_code when grouped by them."""
    labels = {
        "channel": inputs.channels,
        "failure_code": inputs.failure_codes.select(
            pl.col("failure_code").cast(pl.Int32), failure_name="name"
        ),
    }
    for grouping in by:
        if grouping in _LABELS:
            groups = groups.join(labels[grouping], on=_LABELS[grouping][0], how="left", maintain_order="left")
    order = []
    for name in groups.columns:
        if name in ("channel_name", "failure_name"):
            continue
        order.append(name)
        order.extend(label for key, label in _LABELS.values() if key == name and label in groups.columns)
    return groups.select(order)


def failure_rate_jumps(
    messages: pl.LazyFrame,
    day: Window,
    *,
    trailing_days: int = 7,
    min_volume: int = 50,
    min_change_pp: float = 5.0,
    min_ratio: float = 1.5,
) -> pl.LazyFrame:
    """One row per channel: its failure rate in `day` against its trailing baseline, and whether it jumped.

    `messages` are message rows or their message_counts (transforms.reports) by channel.

    The baseline is the pooled failure rate over the `trailing_days` windows before `day`. A channel is
    flagged (is_jump) when it sent at least `min_volume` messages, its rate exceeds the baseline by
    `min_change_pp` percentage points and by a factor of `min_ratio`, and even the low end of its 95%
    interval lies above the baseline, so a handful of failures in a quiet channel never raises the alarm.
    """
    trailing = Window(day.start - trailing_days * day.width, day.start)
    current = failure_rates(messages, by=["channel"], start=day.start, end=day.end)
    baseline = failure_rates(messages, by=["channel"], start=trailing.start, end=trailing.end).select(
        "channel_id",
        baseline_n_messages="n_messages",
        baseline_n_failed="n_failed",
        baseline_failure_rate="failure_rate",
    )
    change = pl.col("failure_rate") - pl.col("baseline_failure_rate")
    return (
        current.join(baseline, on="channel_id", how="left", nulls_equal=True)
        .with_columns(failure_rate_change_pp=change * 100)
        .with_columns(
            is_jump=(
                (pl.col("n_messages") >= min_volume)
                & (pl.col("failure_rate_change_pp") >= min_change_pp)
                & (pl.col("failure_rate") >= pl.col("baseline_failure_rate") * min_ratio)
                & (pl.col("failure_rate_low") > pl.col("baseline_failure_rate"))
            ).fill_null(False)
        )
        .select(
            "channel_id",
            "n_messages",
            "n_failed",
            "failure_rate",
            "failure_rate_low",
            "failure_rate_high",
            "baseline_n_messages",
            "baseline_n_failed",
            "baseline_failure_rate",
            "failure_rate_change_pp",
            "is_jump",
        )
        .sort(["is_jump", "failure_rate_change_pp"], descending=True, nulls_last=True)
    )


# -- formats ------------------------------------------------------------------------------------------------


def report_json(report: FailureReport) -> dict[str, Any]:
    """The report as the stable JSON document of docs/report-json.md (schema_version 1)."""
    group_columns = report.group_columns

    def measures(row: Mapping[str, Any]) -> dict[str, Any]:
        has_previous = row["previous_n_messages"] is not None
        return {
            **{name: row[name] for name in (*METRIC_COLUMNS, "delivery_rate_low", "delivery_rate_high")},
            "previous": {
                "n_messages": row["previous_n_messages"],
                "n_failed": row["previous_n_failed"],
                "failure_rate": row["previous_failure_rate"],
            }
            if has_previous
            else None,
            "failure_rate_change_pp": row["failure_rate_change_pp"],
        }

    totals = report.totals.row(0, named=True) if len(report.totals) else None
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_at": _iso(report.generated_at),
        "window": _window_json(report.window),
        "previous_window": _window_json(report.previous),
        "by": list(report.by),
        "min_volume": report.min_volume,
        "confidence_level": CONFIDENCE_LEVEL,
        "totals": measures(totals) if totals else None,
        "groups": [
            {"group": {name: _json_value(row[name]) for name in group_columns}, **measures(row)}
            for row in report.groups.iter_rows(named=True)
        ],
        "top_failure_codes": [
            {name: _json_value(value) for name, value in row.items()}
            for row in report.top_failure_codes.iter_rows(named=True)
        ],
    }


def _window_json(window: Window) -> dict[str, str]:
    return {"start": _iso(window.start), "end": _iso(window.end)}


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _json_value(value: object) -> object:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def report_csv(report: FailureReport) -> str:
    """One CSV row per group: the group columns, then every metric and change column."""
    return report.groups.write_csv()


def report_parquet(report: FailureReport) -> bytes:
    """The groups frame as Parquet (typed columns, for loading elsewhere)."""
    buffer = io.BytesIO()
    report.groups.write_parquet(buffer)
    return buffer.getvalue()


def report_title(report: FailureReport) -> str:
    last_day = (report.window.end - dt.timedelta(microseconds=1)).date()
    span = f"{report.window.start.date()} to {last_day}"
    grouped = f" by {', '.join(report.by)}" if report.by else ""
    return f"Failure rate{grouped}, {span} (UTC days, by created_at)"


def report_markdown(report: FailureReport, *, max_groups: int | None = None) -> str:
    """The report as markdown: totals, the groups (first `max_groups`), and the top failure codes."""
    lines = [f"## {report_title(report)}", ""]
    lines += [*totals_sentence(report), ""]
    headers, rows = group_cells(report)
    shown = rows if max_groups is None else rows[:max_groups]
    lines += _markdown_table(headers, shown)
    if len(shown) < len(rows):
        lines.append(f"\n_{len(rows) - len(shown)} more groups not shown._")
    lines += ["", "### Top failure codes", ""]
    lines += _markdown_table(*code_cells(report))
    return "\n".join(lines) + "\n"


def report_tables(report: FailureReport) -> list[Table]:
    """The report as rich tables for the terminal: groups (with a totals footer) and top failure codes."""
    headers, rows = group_cells(report)
    groups = Table(title=report_title(report), caption=" ".join(totals_sentence(report)), show_footer=False)
    for header in headers:
        groups.add_column(header, justify="right" if header in _NUMERIC_HEADERS else "left")
    for row in rows:
        groups.add_row(*row)
    code_headers, code_rows = code_cells(report)
    codes = Table(title="Top failure codes")
    for header in code_headers:
        codes.add_column(header, justify="right" if header in _NUMERIC_HEADERS else "left")
    for row in code_rows:
        codes.add_row(*row)
    return [groups, codes]


_NUMERIC_HEADERS: Final = frozenset(
    {
        "messages",
        "delivered",
        "failed",
        "pending",
        "failure rate",
        "failure 95% CI",
        "delivery rate",
        "delivery 95% CI",
        "previous",
        "change",
        "share",
        "code",
    }
)


def totals_sentence(report: FailureReport) -> list[str]:
    """One plain sentence: the window's volume, outcomes, failure rate with interval, and its change."""
    if report.totals.is_empty():
        return ["No messages in this window."]
    t = report.totals.row(0, named=True)
    change = t["failure_rate_change_pp"]
    against = (
        f"failure rate {_pp(change)} against the previous {_span(report.previous)} "
        f"({_percent(t['previous_failure_rate'])} of {t['previous_n_messages']:,})"
        if change is not None
        else f"no messages in the previous {_span(report.previous)} to compare with"
    )
    return [
        f"{t['n_messages']:,} messages: {t['n_delivered']:,} delivered "
        f"({_percent(t['delivery_rate'])}), {t['n_failed']:,} failed ({_percent(t['failure_rate'])}, "
        f"95% CI {_interval(t['failure_rate_low'], t['failure_rate_high'])}), {t['n_pending']:,} pending; "
        f"{against}."
    ]


def _span(window: Window) -> str:
    days = window.width / dt.timedelta(days=1)
    return f"{days:g} days" if days != 1 else "day"


def group_cells(report: FailureReport) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of the groups table (shared by the terminal, markdown and HTML forms)."""
    group_columns = report.group_columns
    headers = [
        *group_columns,
        "messages",
        "delivered",
        "failed",
        "pending",
        "failure rate",
        "failure 95% CI",
        "delivery rate",
        "delivery 95% CI",
        "previous",
        "change",
    ]
    rows = [
        [
            *(_text(row[name]) for name in group_columns),
            f"{row['n_messages']:,}",
            f"{row['n_delivered']:,}",
            f"{row['n_failed']:,}",
            f"{row['n_pending']:,}",
            _percent(row["failure_rate"]),
            _interval(row["failure_rate_low"], row["failure_rate_high"]),
            _percent(row["delivery_rate"]),
            _interval(row["delivery_rate_low"], row["delivery_rate_high"]),
            _percent(row["previous_failure_rate"]),
            _pp(row["failure_rate_change_pp"]),
        ]
        for row in report.groups.iter_rows(named=True)
    ]
    return headers, rows


def code_cells(report: FailureReport) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of the top-failure-codes table."""
    headers = ["code", "name", "category", "failed", "share", "description"]
    rows = [
        [
            _text(row["failure_code"]),
            _text(row["failure_name"]),
            _text(row["category"]),
            f"{row['n_failed']:,}",
            _percent(row["share_of_failures"]),
            _text(row["failure_description"]),
        ]
        for row in report.top_failure_codes.iter_rows(named=True)
    ]
    return headers, rows


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    align = ["---:" if header in _NUMERIC_HEADERS else "---" for header in headers]
    return [line(headers), "| " + " | ".join(align) + " |", *(line(row) for row in rows)]


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{low:.1%} - {high:.1%}"


def _pp(change: float | None) -> str:
    return "-" if change is None else f"{change:+.2f} pp"


def write_atomically(path: Path, content: str | bytes) -> None:
    """Replace `path` whole (write beside it, then rename), so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    if isinstance(content, bytes):
        temporary.write_bytes(content)
    else:
        temporary.write_text(content, encoding="utf-8")
    temporary.replace(path)


# -- kept for the demo and rebuild commands -----------------------------------------------------------------


def failure_rate_by_channel(data_dir: Path, first: dt.date, last: dt.date) -> Table:
    """Per channel: volume, outcomes, failure and delivery rate with their 95% intervals, change."""
    window = report_window(first, last)
    with open_warehouse(data_dir) as con:
        inputs = read_report_inputs(con, window, by=["channel"])
    report = failure_report(inputs, window, by=["channel"], generated_at=dt.datetime.now(dt.UTC))
    return report_tables(report)[0]


def rebuild_warehouse(data_dir: Path) -> int:
    """Reload every lake partition (messages, then interactions) into the warehouse; returns how many."""
    lake = lake_from_env(data_dir)
    results = Warehouse(data_dir).rebuild(
        lake_partitions(lake, RAW_MESSAGES), interactions=lake_partitions(lake, RAW_INTERACTIONS)
    )
    return len(results)
