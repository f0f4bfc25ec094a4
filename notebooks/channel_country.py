"""Channel and country comparison: where messages fail, country by channel, and what changed week over week.

Run it as an app (`marimo edit notebooks/channel_country.py`) or as a script
(`python notebooks/channel_country.py`). It reads the warehouse of $BIRD_ETL_DATA_DIR (default ./data)
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

    from transforms.reports import compare_periods, failure_rates
    from warehouse.store import Warehouse, data_dir_from_env

    return Warehouse, data_dir_from_env, compare_periods, dt, failure_rates, mo, pl


@app.cell
def _(Warehouse, data_dir_from_env):
    con = Warehouse(data_dir_from_env()).connect_readonly()
    return (con,)


@app.cell
def _(con, dt, mo):
    # Two back-to-back periods of the same width ending with the last day the warehouse holds.
    last_day = con.sql("select max(created_at)::date from messages").fetchall()[0][0]
    days = mo.ui.slider(1, 14, value=3, label="Days per period")
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.UTC)
    days
    return days, end


@app.cell
def _(con, days, dt, end):
    start = end - dt.timedelta(days=days.value)
    previous_start = start - dt.timedelta(days=days.value)
    messages = con.sql(
        "select * from messages where created_at >= $start and created_at < $end",
        params={"start": previous_start, "end": end},
    ).pl()
    channel_names = con.sql("select channel_id, name as channel_name from channels").pl()
    return channel_names, messages, previous_start, start


@app.cell
def _(channel_names, end, failure_rates, messages, pl, start):
    # Country x channel failure rate; cells under 20 messages are blanked rather than shown as alarming.
    by_country_channel = (
        failure_rates(messages.lazy(), by=["country", "channel"], start=start, end=end)
        .collect()
        .join(channel_names, on="channel_id", how="left")
    )
    heat = (
        by_country_channel.with_columns(
            pl.when(pl.col("n_messages") >= 20).then(pl.col("failure_rate").round(3)).alias("failure_rate"),
            pl.col("country_code").fill_null("no phone"),
        )
        .pivot(on="channel_name", index="country_code", values="failure_rate", sort_columns=True)
        .sort("country_code")
    )
    heat
    return (by_country_channel,)


@app.cell
def _(by_country_channel, messages, pl, start):
    # Every message of the period lands in exactly one cell.
    in_period = messages.filter(pl.col("created_at") >= start)
    assert by_country_channel["n_messages"].sum() == len(in_period)
    return


@app.cell
def _(channel_names, compare_periods, end, failure_rates, messages, previous_start, start):
    # Channel failure rate against the previous period: the change in percentage points, biggest rise first.
    current = failure_rates(messages.lazy(), by=["channel"], start=start, end=end)
    previous = failure_rates(messages.lazy(), by=["channel"], start=previous_start, end=start)
    change = (
        compare_periods(current, previous)
        .collect()
        .join(channel_names, on="channel_id", how="left")
        .sort("failure_rate_change_pp", descending=True, nulls_last=True)
    )
    change.select(
        "channel_name",
        "n_messages",
        "failure_rate",
        "failure_rate_low",
        "failure_rate_high",
        "previous_failure_rate",
        "failure_rate_change_pp",
    )
    return


@app.cell
def _(end, failure_rates, messages, start):
    # Countries across all channels, with volume, so a route problem stands out from a channel problem.
    failure_rates(
        messages.lazy(), by=["country", "platform"], start=start, end=end, min_volume=20
    ).collect().sort("failure_rate", descending=True)
    return


if __name__ == "__main__":
    app.run()
