"""Failure investigation: which channels fail, with which codes, at which step, and what Bird said.

Run it as an app (`marimo edit notebooks/failure_investigation.py`) or as a script
(`python notebooks/failure_investigation.py`). It reads the warehouse of $BIRD_ETL_DATA_DIR (default ./data)
read-only and writes nothing.
"""

# ruff: noqa: B018  (a cell's last bare expression is what marimo displays)

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import datetime as dt

    import marimo as mo
    import polars as pl

    from transforms.reports import failure_rates, top_failure_codes
    from warehouse.store import Warehouse, data_dir_from_env

    return Warehouse, data_dir_from_env, dt, failure_rates, mo, pl, top_failure_codes


@app.cell
def _(Warehouse, data_dir_from_env):
    con = Warehouse(data_dir_from_env()).connect_readonly()
    return (con,)


@app.cell
def _(con, dt, mo):
    # The last seven UTC days the warehouse holds, as a half-open window [start, end).
    last_day = con.sql("select max(created_at)::date from messages").fetchall()[0][0]
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.UTC)
    start = end - dt.timedelta(days=7)
    messages = con.sql(
        "select * from messages where created_at >= $start and created_at < $end",
        params={"start": start, "end": end},
    ).pl()
    failure_codes = con.sql("select * from failure_codes").pl()
    channels = con.sql("select channel_id, name as channel_name from channels").pl()
    mo.md(f"## Failures from {start:%Y-%m-%d} to {end:%Y-%m-%d} (exclusive): {len(messages):,} messages")
    return channels, end, failure_codes, messages, start


@app.cell
def _(channels, end, failure_rates, messages, pl, start):
    # Worst channels first; the Wilson interval keeps a quiet channel from looking alarming.
    by_channel = (
        failure_rates(messages.lazy(), by=["channel"], start=start, end=end)
        .collect()
        .join(channels, on="channel_id", how="left")
        .sort("failure_rate", descending=True)
    )
    assert by_channel["n_messages"].sum() == len(messages)
    by_channel.select(
        "channel_name",
        "n_messages",
        "n_failed",
        "failure_rate",
        "failure_rate_low",
        pl.col("failure_rate_high"),
    )
    return (by_channel,)


@app.cell
def _(end, failure_codes, messages, start, top_failure_codes):
    top_codes = top_failure_codes(messages.lazy(), failure_codes.lazy(), start=start, end=end, n=10).collect()
    top_codes
    return (top_codes,)


@app.cell
def _(by_channel, mo):
    channel_picker = mo.ui.dropdown(
        options=dict(zip(by_channel["channel_name"].fill_null("?"), by_channel["channel_id"], strict=True)),
        value=by_channel["channel_name"].fill_null("?")[0],
        label="Channel to drill into",
    )
    channel_picker
    return (channel_picker,)


@app.cell
def _(channel_picker, messages, pl):
    # One channel's failures by step and code, with the reason text Bird sent most often.
    failed = messages.filter(
        (pl.col("channel_id") == channel_picker.value)
        & pl.col("status").is_in(["sending_failed", "delivery_failed", "rejected"])
    )
    by_step = (
        failed.group_by("failure_source_name", "failure_code")
        .agg(n_failed=pl.len(), most_common_reason=pl.col("reason").mode().first())
        .sort("n_failed", descending=True)
    )
    by_step
    return (failed,)


@app.cell
def _(failed, pl):
    # Failures per country and hour of day: a burst at one hour points at an incident, a spread at a route.
    failed.group_by(pl.col("country_code"), pl.col("created_at").dt.hour().alias("hour")).len().sort(
        "len", descending=True
    ).head(20)
    return


@app.cell
def _(failed):
    failed.select("id", "created_at", "status", "failure_code", "failure_source_code", "reason").head(20)
    return


if __name__ == "__main__":
    app.run()
