"""`python -m bench.inprocess transforms|report`: warm, in-process timings of the transforms and the report.

Run by `bench/run.py` as its own process (so the harness never imports the pipeline), each prints one JSON
line. Every timing is taken `--repeat` times after one untimed warm-up pass (files in the page cache, polars
and DuckDB initialised, imports done); the median and the best are reported.

- `transforms`: `pipelines.loading.flattened_slices` over every `raw_messages` partition of a lake, then
  the daily marts of `transforms/marts.py` (`delivery_daily`, `failure_breakdown`) over the result.
- `report`: the failure-rate report as `bird-etl report` builds it (`open_warehouse`, `read_report_inputs`:
  DuckDB counts the messages, then `failure_report` over the counts), without rendering.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import polars as pl


def _timed(function: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Seconds of each of `repeat` calls after one warm-up call, and the last call's result."""
    result = function()
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def _summary(seconds: list[float]) -> dict[str, float]:
    return {"median_s": round(statistics.median(seconds), 4), "best_s": round(min(seconds), 4)}


def transforms(data_dir: Path, repeat: int) -> dict[str, Any]:
    from pipelines.ingest.land import RAW_MESSAGES
    from pipelines.lake import lake_from_env
    from pipelines.loading import flattened_slices
    from pipelines.reporting import open_warehouse
    from transforms import marts

    lake = lake_from_env(data_dir)
    partitions = lake.partitions(RAW_MESSAGES)
    with open_warehouse(data_dir) as con:
        failure_codes = con.sql("select * from failure_codes").pl().lazy()

    def flatten() -> pl.DataFrame:
        return pl.concat(
            [
                rows
                for workspace, day in partitions
                for rows in flattened_slices(lake, RAW_MESSAGES, workspace, day)
            ]
        )

    flatten_s, messages = _timed(flatten, repeat)

    def build_marts() -> tuple[pl.DataFrame, pl.DataFrame]:
        rows = messages.lazy()
        return (
            marts.delivery_daily(rows).collect(),
            marts.failure_breakdown(rows, failure_codes).collect(),
        )

    marts_s, (daily, breakdown) = _timed(build_marts, repeat)
    total = [a + b for a, b in zip(flatten_s, marts_s, strict=True)]
    return {
        "messages": messages.height,
        "partitions": len(partitions),
        "delivery_daily_rows": daily.height,
        "failure_breakdown_rows": breakdown.height,
        "flatten": _summary(flatten_s),
        "marts": _summary(marts_s),
        "total": _summary(total),
        "repeat": repeat,
    }


def report(data_dir: Path, first: dt.date, last: dt.date, by: str, repeat: int) -> dict[str, Any]:
    from pipelines.reporting import (
        failure_report,
        open_warehouse,
        parse_by,
        read_report_inputs,
        report_window,
    )

    window = report_window(first, last)
    groupings = parse_by(by)

    def read() -> Any:
        with open_warehouse(data_dir) as con:
            return read_report_inputs(con, window, by=groupings)

    def build(inputs: Any) -> Any:
        return failure_report(inputs, window, by=groupings, generated_at=dt.datetime.now(dt.UTC))

    def whole() -> Any:
        return build(read())

    whole_s, result = _timed(whole, repeat)
    read_s, inputs = _timed(read, repeat)
    build_s, _ = _timed(lambda: build(inputs), repeat)
    return {
        # The messages the report counted (DuckDB hands polars their counts, not the rows).
        "messages_read": int(inputs.message_counts["n_messages"].sum()),
        "counted_rows": inputs.message_counts.height,
        "groups": result.groups.height,
        "total": _summary(whole_s),
        "read": _summary(read_s),
        "compute": _summary(build_s),
        "repeat": repeat,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["transforms", "report"])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--start", type=dt.date.fromisoformat, help="report: first UTC day")
    parser.add_argument("--end", type=dt.date.fromisoformat, help="report: last UTC day, included")
    parser.add_argument("--by", default="channel", help="report: groupings")
    args = parser.parse_args(argv)
    if args.what == "transforms":
        line = transforms(args.data_dir, args.repeat)
    else:
        line = report(args.data_dir, args.start, args.end, args.by, args.repeat)
    print(orjson.dumps(line).decode(), flush=True)


if __name__ == "__main__":
    main()
