"""The daily failure-rate report as a Dagster asset, and the check that flags a channel's failure-rate jump.

The asset writes `{data_dir}/reports/failure_rate/date=YYYY-MM-DD/report.{json,md,html}` and shows the
markdown in its metadata. Its check, `failure_rate_jump`, compares each channel's rate on the day with its
trailing baseline and warns (it never blocks: a bad day is news, not a broken pipeline). It is declared on
the asset (check_specs) rather than as a separate partitioned check, which Dagster still calls preview.
Thresholds are run config (`jump`), editable in the launchpad.
"""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import polars as pl

from pipelines.ingest.windows import Window
from pipelines.partitions import DAILY
from pipelines.reporting import (
    failure_rate_jumps,
    failure_report,
    parse_by,
    read_message_counts,
    read_report_charts,
    read_report_inputs,
    report_json,
    report_markdown,
    write_atomically,
)
from pipelines.resources import Archive

REPORTS_DIR = "reports/failure_rate"


class FailureRateJumpConfig(dg.Config):
    """When a channel's daily failure rate counts as a jump against its trailing baseline."""

    trailing_days: int = 7
    min_volume: int = 50
    min_change_pp: float = 5.0
    min_ratio: float = 1.5


class FailureRateReportConfig(dg.Config):
    """How the daily report groups its messages, and the thresholds of its jump check."""

    by: str = "channel"  # comma-separated groupings, as `bird-etl report --by`
    min_volume: int = 0
    jump: FailureRateJumpConfig = FailureRateJumpConfig()


def report_directory(root: Path, day: dt.date) -> Path:
    """Where the report of one UTC day is written."""
    return root / REPORTS_DIR / f"date={day.isoformat()}"


@dg.asset(
    key="failure_rate_report",
    partitions_def=DAILY,
    deps=["messages"],
    group_name="reports",
    kinds={"duckdb", "polars", "html"},
    check_specs=[
        dg.AssetCheckSpec(
            "failure_rate_jump",
            asset="failure_rate_report",
            description="No channel's failure rate jumped against its trailing baseline.",
        )
    ],
)
def failure_rate_report(
    context: dg.AssetExecutionContext, config: FailureRateReportConfig, archive: Archive
) -> dg.MaterializeResult:
    """One report per UTC day: failure and delivery rates per group against the day before, top failure codes
    (JSON, markdown and HTML with charts); its check warns when a channel's failure rate jumped."""
    day = Window(*context.partition_time_window)
    jump = config.jump
    by = parse_by(config.by)
    with archive.warehouse.connect_readonly() as con:
        inputs = read_report_inputs(con, day, by=by)
        charts = read_report_charts(con, day)
        history = read_message_counts(
            con, Window(day.start - jump.trailing_days * day.width, day.end), by=["channel"]
        )
    report = failure_report(
        inputs,
        day,
        by=by,
        min_volume=config.min_volume,
        generated_at=dt.datetime.now(dt.UTC),
    )
    directory = report_directory(archive.root, day.start.date())
    write_atomically(directory / "report.json", json.dumps(report_json(report), indent=2) + "\n")
    write_atomically(directory / "report.md", report_markdown(report))
    from pipelines.report_html import render_html  # matplotlib: only in runs that render

    write_atomically(directory / "report.html", render_html(report, charts))
    rates = failure_rate_jumps(
        history.lazy(),
        day,
        trailing_days=jump.trailing_days,
        min_volume=jump.min_volume,
        min_change_pp=jump.min_change_pp,
        min_ratio=jump.min_ratio,
    ).collect()
    totals = report.totals.row(0, named=True) if len(report.totals) else {}
    return dg.MaterializeResult(
        metadata={
            "preview": dg.MetadataValue.md(report_markdown(report, max_groups=25)),
            "n_messages": totals.get("n_messages", 0),
            "n_failed": totals.get("n_failed", 0),
            "failure_rate": dg.MetadataValue.float(totals.get("failure_rate") or 0.0),
            "groups": len(report.groups),
            "html": dg.MetadataValue.path(str(directory / "report.html")),
            "json": dg.MetadataValue.path(str(directory / "report.json")),
        },
        check_results=[_jump_result(rates.join(inputs.channels, on="channel_id", how="left"), jump)],
    )


def _jump_result(rates: pl.DataFrame, thresholds: FailureRateJumpConfig) -> dg.AssetCheckResult:
    """Warns with the channels whose failure rate jumped; passes when none did."""
    jumps = rates.filter("is_jump")
    return dg.AssetCheckResult(
        check_name="failure_rate_jump",
        passed=jumps.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "no channel's failure rate jumped"
            if jumps.is_empty()
            else f"failure rate jumped on {', '.join(_label(row) for row in jumps.iter_rows(named=True))}"
        ),
        metadata={
            "jumped_channels": len(jumps),
            "channels_checked": len(rates),
            "thresholds": dg.MetadataValue.json(thresholds.model_dump()),
            "channels": dg.MetadataValue.md(_jump_markdown(rates)),
        },
    )


def _label(row: dict) -> str:
    baseline = row["baseline_failure_rate"]
    return (
        f"{row['channel_name'] or row['channel_id']} ({row['failure_rate']:.1%} vs "
        f"{'no baseline' if baseline is None else f'{baseline:.1%}'})"
    )


def _jump_markdown(rates: pl.DataFrame) -> str:
    lines = [
        "| channel | messages | failure rate | 95% CI | baseline | change | jump |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rates.iter_rows(named=True):
        baseline, change = row["baseline_failure_rate"], row["failure_rate_change_pp"]
        lines.append(
            f"| {row['channel_name'] or row['channel_id']} | {row['n_messages']:,} "
            f"| {row['failure_rate']:.2%} "
            f"| {row['failure_rate_low']:.1%} - {row['failure_rate_high']:.1%} "
            f"| {'-' if baseline is None else f'{baseline:.2%}'} "
            f"| {'-' if change is None else f'{change:+.2f} pp'} | {'yes' if row['is_jump'] else ''} |"
        )
    return "\n".join(lines)


REPORT_ASSETS = [failure_rate_report]
# Re-writes reports without re-ingesting (the jump check runs inside the asset).
report_job = dg.define_asset_job(
    "write_failure_rate_reports",
    selection=[failure_rate_report],
    description="Write UTC days' failure-rate reports and check their channels for failure-rate jumps.",
)
REPORT_JOBS = [report_job]
