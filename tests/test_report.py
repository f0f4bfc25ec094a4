"""`bird-etl report` and `bird-etl sql` against a warehouse built by the real pipeline on the emulator.

Protects: the report's numbers equal an independent DuckDB computation for several `--by` combinations
(counts, rates, intervals, the previous period, min-volume, top failure codes); the message counts DuckDB
hands the report, and the report and charts made of them, equal what polars makes of the message rows;
every output format carries the same rows; bad input is one clear line and a non-zero exit, never a
traceback; `sql` is read-only and binds its parameters instead of pasting them into the SQL.
"""

import dataclasses
import datetime as dt
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import click
import duckdb
import polars as pl
import pytest
from click.testing import CliRunner, Result
from polars.testing import assert_frame_equal

from pipelines.report_cli import report_command, sql_command
from pipelines.reporting import (
    failure_report,
    open_warehouse,
    read_message_counts,
    read_report_charts,
    read_report_inputs,
    report_window,
    saved_query_names,
)
from transforms.marts import IS_DELIVERED
from transforms.reports import GROUPINGS, message_counts
from warehouse.store import Warehouse

pytest_plugins = ["tests.demo_warehouse"]  # the session's demo warehouse fixture

# The grouping names of `--by`, as SQL over messages: the test's own definition of each group.
SQL_GROUPS = {
    "workspace": ("workspace_id", "workspace_id"),
    "channel": ("channel_id", "channel_id"),
    "platform": ("platform", "platform"),
    "country": ("country_code", "country_code"),
    "direction": ("direction", "direction"),
    "failure_code": ("failure_code", "failure_code"),
    "failure_source": ("failure_source_name", "failure_source_name"),
    "day": ("day", "created_at::date"),
    "week": ("week", "date_trunc('week', created_at)::date"),
}


def invoke(command: click.Command, data_dir: Path, *args: str) -> Result:
    """Run a command as `pipelines.cli.main` does (standalone_mode=False: a ClickException propagates)."""
    return CliRunner().invoke(
        command, list(args), env={"BIRD_ETL_DATA_DIR": str(data_dir)}, standalone_mode=False
    )


def ok(result: Result) -> str:
    assert result.exception is None, result.exception
    return result.stdout


def user_error(result: Result) -> str:
    """The one-line message of the ClickException the command raised."""
    assert isinstance(result.exception, click.ClickException), result.exception
    message = result.exception.format_message()
    assert "\n" not in message
    return message


def day_window(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    return start, dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)


def expected_groups(
    con: duckdb.DuckDBPyConnection,
    by: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
    min_volume: int = 1,
) -> dict[tuple, tuple[int, int, int, int]]:
    """(group values) -> (messages, delivered, failed, pending), straight from the messages table."""
    keys = [f"{SQL_GROUPS[name][1]} as {SQL_GROUPS[name][0]}" for name in by]
    rows = con.sql(
        f"""
        select {"".join(key + ", " for key in keys)}
            count(*),
            count(*) filter (status = 'delivered'),
            count(*) filter (status in ('sending_failed', 'delivery_failed', 'rejected')),
            count(*) filter (status in ('accepted', 'processing', 'scheduled', 'sent'))
        from messages
        where created_at >= $start and created_at < $end
        {"group by all" if keys else ""}
        having count(*) >= $min_volume
        """,
        params={"start": start, "end": end, "min_volume": min_volume},
    ).fetchall()
    return {tuple(_plain(v) for v in row[: len(by)]): tuple(row[len(by) :]) for row in rows}


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value


def wilson(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.fixture(scope="module")
def warehouse(demo_data_dir: Path) -> duckdb.DuckDBPyConnection:
    with Warehouse(demo_data_dir).connect_readonly() as con:
        yield con


def report_json(data_dir: Path, *args: str) -> dict:
    return json.loads(ok(invoke(report_command, data_dir, "--format", "json", *args)))


@pytest.mark.parametrize(
    "by",
    [
        ["channel"],
        ["platform", "country"],
        ["day", "direction"],
        ["failure_code", "failure_source"],
        ["week", "workspace"],
        [],
    ],
    ids=lambda by: ",".join(by) or "totals",
)
def test_report_numbers_equal_an_independent_computation(
    demo_data_dir: Path,
    demo_days: list[dt.date],
    warehouse: duckdb.DuckDBPyConnection,
    by: list[str],
) -> None:
    previous_day, day = demo_days
    document = report_json(
        demo_data_dir, "--start", day.isoformat(), "--end", day.isoformat(), "--by", ",".join(by)
    )
    current = expected_groups(warehouse, by, *day_window(day, day))
    previous = expected_groups(warehouse, by, *day_window(previous_day, previous_day))
    assert current, "the demo warehouse has messages on its last day"

    columns = [SQL_GROUPS[name][0] for name in by]
    seen = {}
    for group in document["groups"]:
        key = tuple(group["group"][column] for column in columns)
        seen[key] = (group["n_messages"], group["n_delivered"], group["n_failed"], group["n_pending"])
        n, delivered, failed, _ = seen[key]
        assert group["failure_rate"] == pytest.approx(failed / n)
        assert group["delivery_rate"] == pytest.approx(delivered / n)
        assert (group["failure_rate_low"], group["failure_rate_high"]) == pytest.approx(wilson(failed, n))
        assert (group["delivery_rate_low"], group["delivery_rate_high"]) == pytest.approx(
            wilson(delivered, n)
        )
        if key in previous:
            before_n, _, before_failed, _ = previous[key]
            assert group["previous"] == {
                "n_messages": before_n,
                "n_failed": before_failed,
                "failure_rate": pytest.approx(before_failed / before_n),
            }
            assert group["failure_rate_change_pp"] == pytest.approx(
                (failed / n - before_failed / before_n) * 100
            )
        else:
            assert group["previous"] is None and group["failure_rate_change_pp"] is None
    assert seen == current

    (totals,) = expected_groups(warehouse, [], *day_window(day, day)).values()
    assert (
        document["totals"]["n_messages"],
        document["totals"]["n_delivered"],
        document["totals"]["n_failed"],
        document["totals"]["n_pending"],
    ) == totals


def test_channel_groups_carry_names_and_previous_window_is_the_same_width(
    demo_data_dir: Path,
    demo_days: list[dt.date],
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    first, last = demo_days
    document = report_json(demo_data_dir, "--start", first.isoformat(), "--end", last.isoformat())
    assert document["schema"] == "bird-etl/failure-rate-report" and document["schema_version"] == 1
    assert document["window"] == {
        "start": f"{first}T00:00:00Z",
        "end": f"{last + dt.timedelta(days=1)}T00:00:00Z",
    }
    assert document["previous_window"] == {
        "start": f"{first - dt.timedelta(days=2)}T00:00:00Z",
        "end": f"{first}T00:00:00Z",
    }
    names = dict(warehouse.sql("select channel_id, name from channels").fetchall())
    channel_ids = {key[0] for key in expected_groups(warehouse, ["channel"], *day_window(first, last))}
    assert {g["group"]["channel_id"]: g["group"]["channel_name"] for g in document["groups"]} == {
        channel_id: names[channel_id] for channel_id in channel_ids
    }
    # Nothing was archived before the demo days: no previous period to compare with.
    assert all(group["previous"] is None for group in document["groups"])


def test_min_volume_hides_small_groups_but_not_their_messages_from_the_totals(
    demo_data_dir: Path,
    demo_days: list[dt.date],
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    _, day = demo_days
    window = day_window(day, day)
    document = report_json(
        demo_data_dir, "--start", str(day), "--end", str(day), "--by", "country,channel", "--min-volume", "40"
    )
    expected = expected_groups(warehouse, ["country", "channel"], *window, min_volume=40)
    assert len(expected) < len(expected_groups(warehouse, ["country", "channel"], *window))
    assert {(g["group"]["country_code"], g["group"]["channel_id"]) for g in document["groups"]} == set(
        expected
    )
    assert document["totals"]["n_messages"] == sum(
        n for n, *_ in expected_groups(warehouse, [], *window).values()
    )


def test_top_failure_codes_count_failed_messages_with_their_descriptions(
    demo_data_dir: Path,
    demo_days: list[dt.date],
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    first, last = demo_days
    start, end = day_window(first, last)
    document = report_json(demo_data_dir, "--start", str(first), "--end", str(last), "--top-codes", "3")
    expected = warehouse.sql(
        """
        select m.failure_code, count(*) as n, any_value(c.description) as description
        from messages as m left join failure_codes as c using (failure_code)
        where m.created_at >= $start and m.created_at < $end
            and m.status in ('sending_failed', 'delivery_failed', 'rejected')
        group by m.failure_code
        order by n desc, m.failure_code
        """,
        params={"start": start, "end": end},
    ).fetchall()
    total = sum(n for _, n, _ in expected)
    assert [
        (c["failure_code"], c["n_failed"], c["failure_description"], c["n_window_failures"])
        for c in document["top_failure_codes"]
    ] == [(code, n, description, total) for code, n, description in expected[:3]]
    assert any(c["failure_description"] for c in document["top_failure_codes"])


def test_duckdb_counts_the_messages_as_message_counts_defines(
    demo_data_dir: Path, demo_days: list[dt.date], warehouse: duckdb.DuckDBPyConnection
) -> None:
    window = report_window(*demo_days)
    rows = warehouse.sql("select * from messages").pl().lazy()
    (workspace,) = warehouse.sql("select any_value(workspace_id) from messages").fetchall()[0]
    for by, workspace_ids in [(list(GROUPINGS), ()), (["channel"], (workspace,)), ([], ("no-such",))]:
        with open_warehouse(demo_data_dir) as con:
            counted = read_message_counts(con, window, by=by, workspace_ids=workspace_ids)
        of_workspaces = pl.col("workspace_id").is_in(workspace_ids) if workspace_ids else pl.lit(True)
        expected = message_counts(rows.filter(of_workspaces), by=by).collect()
        assert_frame_equal(counted, expected, check_row_order=False, check_column_order=False)


@pytest.mark.parametrize(
    "by",
    [["channel"], ["country", "failure_code"], ["week", "day"], [], list(GROUPINGS)],
    ids=lambda by: ",".join(by) or "totals",
)
def test_the_report_of_the_counts_is_the_report_of_the_message_rows(
    demo_data_dir: Path, demo_days: list[dt.date], warehouse: duckdb.DuckDBPyConnection, by: list[str]
) -> None:
    window = report_window(demo_days[-1], demo_days[-1])
    with open_warehouse(demo_data_dir) as con:
        counted = read_report_inputs(con, window, by=by)
    # The transforms count message rows themselves: the same report, without DuckDB's counting.
    rows = dataclasses.replace(counted, message_counts=warehouse.sql("select * from messages").pl())
    now = dt.datetime.now(dt.UTC)
    of_counts, of_rows = (
        failure_report(inputs, window, by=by, generated_at=now) for inputs in (counted, rows)
    )
    assert not of_counts.groups.is_empty()
    for part in ("groups", "totals", "top_failure_codes"):
        assert_frame_equal(getattr(of_counts, part), getattr(of_rows, part))


def test_chart_frames_cover_the_window_and_its_delivery_times(
    demo_data_dir: Path, demo_days: list[dt.date], warehouse: duckdb.DuckDBPyConnection
) -> None:
    window = report_window(demo_days[-1], demo_days[-1])
    with open_warehouse(demo_data_dir) as con:
        charts = read_report_charts(con, window)
    rows = warehouse.sql(
        "select * from messages where created_at >= $start and created_at < $end",
        params={"start": window.start, "end": window.end},
    ).pl()
    assert charts.daily_by_channel["n_messages"].sum() == len(rows)
    assert charts.country_by_channel["n_messages"].sum() == len(rows)
    delivered = rows.filter(
        IS_DELIVERED, pl.col("direction") == "outgoing", pl.col("delivery_seconds").is_not_null()
    ).select(pl.col("platform").fill_null("unknown"), "delivery_seconds")
    assert not delivered.is_empty()
    assert_frame_equal(charts.delivery_seconds, delivered, check_row_order=False)


def test_every_format_carries_the_same_groups(
    demo_data_dir: Path, demo_days: list[dt.date], tmp_path: Path
) -> None:
    first, last = demo_days
    args = ("--start", str(first), "--end", str(last), "--by", "platform,direction")
    document = report_json(demo_data_dir, *args)
    expected = {
        (g["group"]["platform"], g["group"]["direction"]): (g["n_messages"], g["n_failed"])
        for g in document["groups"]
    }

    csv = pl.read_csv(io.StringIO(ok(invoke(report_command, demo_data_dir, *args, "--format", "csv"))))
    ok(
        invoke(
            report_command,
            demo_data_dir,
            *args,
            "--format",
            "parquet",
            "--output",
            str(tmp_path / "r.parquet"),
        )
    )
    parquet = pl.read_parquet(tmp_path / "r.parquet")
    for frame in (csv, parquet):
        assert {
            (row["platform"], row["direction"]): (row["n_messages"], row["n_failed"])
            for row in frame.iter_rows(named=True)
        } == expected

    markdown = ok(invoke(report_command, demo_data_dir, *args, "--format", "md"))
    table = ok(invoke(report_command, demo_data_dir, *args, "--format", "table"))
    for text in (markdown, table):
        assert "Failure rate by platform, direction" in text
        assert f"{document['totals']['n_messages']:,} messages" in text
        assert "Top failure codes" in text
    assert markdown.count("\n| ") >= len(expected) + 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "channel,colour"], "unknown grouping colour"),
        (["--by", "day,day"], "names a grouping twice"),
        (["--start", "2026-11-20", "--end", "2026-11-19"], "--end 2026-11-19 is before --start 2026-11-20"),
        (["--start", "2026-02-30"], "does not match the format"),
        (["--format", "parquet"], "--format parquet needs --output PATH"),
        (["--format", "pdf"], "'pdf' is not one of"),
        (["--min-volume", "-1"], "--min-volume"),
    ],
)
def test_bad_report_input_is_one_clear_line(demo_data_dir: Path, args: list[str], message: str) -> None:
    assert message in user_error(invoke(report_command, demo_data_dir, *args))


def test_missing_warehouse_is_one_clear_line(tmp_path: Path) -> None:
    message = user_error(invoke(report_command, tmp_path, "--by", "channel"))
    assert message.startswith(f"no warehouse at {tmp_path / 'warehouse.duckdb'}")
    assert "no warehouse at" in user_error(invoke(sql_command, tmp_path, "select 1"))


def test_the_entry_point_prints_no_traceback_and_exits_non_zero(tmp_path: Path) -> None:
    """Through `pipelines.cli.main`, with the commands registered as the lead registers them."""
    program = (
        "from pipelines.cli import cli, main\n"
        "from pipelines.report_cli import report_command, sql_command\n"
        "cli.add_command(report_command)\n"
        "cli.add_command(sql_command)\n"
        "main()\n"
    )
    # A missing warehouse: the error raised deepest (after parsing, while opening the warehouse).
    result = subprocess.run(
        [sys.executable, "-c", program, "--data-dir", str(tmp_path), "report", "--by", "channel,country"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},  # rich wraps stderr at 80 columns when it is not a terminal
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.startswith("error: no warehouse at ") and len(result.stderr.strip().splitlines()) == 1
    )


def test_sql_prints_a_table_or_csv(demo_data_dir: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    (count,) = warehouse.sql("select count(*) from messages").fetchall()[0]
    csv = ok(invoke(sql_command, demo_data_dir, "select count(*) as n from messages", "--csv"))
    assert csv == f"n\n{count}\n"
    assert str(count) in ok(invoke(sql_command, demo_data_dir, "select count(*) as n from messages"))


def test_sql_binds_parameters_instead_of_pasting_them(
    demo_data_dir: Path,
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    query = "select count(*) as n from messages where channel_id = $channel"
    injected = ok(invoke(sql_command, demo_data_dir, query, "--param", "channel=x' or '1'='1", "--csv"))
    assert injected == "n\n0\n"
    channel_id, n = warehouse.sql(
        "select channel_id, count(*) from messages group by all limit 1"
    ).fetchall()[0]
    assert (
        ok(invoke(sql_command, demo_data_dir, query, "--param", f"channel={channel_id}", "--csv"))
        == f"n\n{n}\n"
    )


def test_saved_query_with_date_parameters(
    demo_data_dir: Path, demo_days: list[dt.date], warehouse: duckdb.DuckDBPyConnection
) -> None:
    _, last = demo_days
    start, end = day_window(last, last)
    output = ok(
        invoke(
            sql_command,
            demo_data_dir,
            "--saved",
            "top_failures",
            "--param",
            f"start={last}",
            "--param",
            f"end={last + dt.timedelta(days=1)}",
            "--csv",
        )
    )
    frame = pl.read_csv(io.StringIO(output))
    (failed,) = warehouse.sql(
        "select count(*) from messages where created_at >= $start and created_at < $end"
        " and status in ('sending_failed', 'delivery_failed', 'rejected')",
        params={"start": start, "end": end},
    ).fetchall()[0]
    assert frame["n_failed"].sum() == failed > 0


@pytest.mark.parametrize("name", saved_query_names())
def test_every_saved_query_runs_on_a_real_warehouse(
    demo_data_dir: Path, demo_days: list[dt.date], name: str
) -> None:
    first, last = demo_days
    output = ok(
        invoke(
            sql_command,
            demo_data_dir,
            "--saved",
            name,
            "--param",
            f"start={first}",
            "--param",
            f"end={last + dt.timedelta(days=1)}",
            "--csv",
        )
    )
    assert len(pl.read_csv(io.StringIO(output))) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--saved", "top_failures", "--param", "start=2026-01-01"], "missing --param end"),
        (["select 1 as one", "--param", "start=2026-01-01"], "unused --param start"),
        (["--saved", "no_such_query"], "no saved query 'no_such_query'; saved queries: "),
        (["select 1", "--saved", "top_failures"], "give either a QUERY or --saved NAME"),
        ([], "give either a QUERY or --saved NAME"),
        (["select 1", "--param", "novalue"], "is not NAME=VALUE"),
        (["select 1; select 2"], "expected one SQL statement, got 2"),
        (["select * from no_such_table"], "no_such_table"),
        (["create table scratch as select 1"], "read-only"),
    ],
)
def test_bad_sql_input_is_one_clear_line(demo_data_dir: Path, args: list[str], message: str) -> None:
    assert message in user_error(invoke(sql_command, demo_data_dir, *args))


def test_sql_cannot_write_files(demo_data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "leak.csv"
    message = user_error(invoke(sql_command, demo_data_dir, f"copy (select * from messages) to '{target}'"))
    assert "disabled by configuration" in message
    assert not target.exists()
    assert "locked" in user_error(invoke(sql_command, demo_data_dir, "set enable_external_access = true"))


def test_sql_lists_the_saved_queries(demo_data_dir: Path) -> None:
    listed = ok(invoke(sql_command, demo_data_dir, "--list")).split()
    assert listed == saved_query_names()
    assert {"top_failures", "daily_failure_rate", "failure_rate_by_country"} <= set(listed)
