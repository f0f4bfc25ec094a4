"""Delivery funnel and latency: how outgoing messages move from accepted to delivered (and on to opened or
clicked), and how long delivery takes per platform.

Run it as an app (`marimo edit notebooks/delivery_funnel.py`) or as a script
(`python notebooks/delivery_funnel.py`). It reads the warehouse of $BIRD_ETL_DATA_DIR (default ./data)
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

    from transforms import vocabulary
    from warehouse.store import Warehouse, data_dir_from_env

    return Warehouse, data_dir_from_env, dt, mo, pl, vocabulary


@app.cell
def _(Warehouse, data_dir_from_env):
    data_dir = data_dir_from_env()
    con = Warehouse(data_dir).connect_readonly()
    return con, data_dir


@app.cell
def _(con, dt, mo):
    # The last seven UTC days the warehouse holds, as a half-open window [start, end).
    last_day = con.sql("select max(created_at)::date from messages").fetchall()[0][0]
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.UTC)
    start = end - dt.timedelta(days=7)
    outgoing = con.sql(
        "select * from messages where created_at >= $start and created_at < $end and direction = 'outgoing'",
        params={"start": start, "end": end},
    ).pl()
    mo.md(f"## Outgoing messages from {start:%Y-%m-%d} to {end:%Y-%m-%d} (exclusive): {len(outgoing):,}")
    return end, outgoing, start


@app.cell
def _(outgoing, pl, vocabulary):
    # Funnel per platform: every stage counts the messages that reached it or went beyond.
    reached_sent = pl.col("status").is_in(["sent", *vocabulary.DELIVERED_STATUSES, "delivery_failed"])
    funnel = (
        outgoing.group_by("platform")
        .agg(
            n_messages=pl.len(),
            n_sent=reached_sent.sum(),
            n_delivered=pl.col("status").is_in(vocabulary.DELIVERED_STATUSES).sum(),
            n_failed=pl.col("status").is_in(vocabulary.FAILED_STATUSES).sum(),
            n_pending=pl.col("status").is_in(vocabulary.PENDING_STATUSES).sum(),
        )
        .with_columns(
            sent_rate=pl.col("n_sent") / pl.col("n_messages"),
            delivered_of_sent=pl.col("n_delivered") / pl.col("n_sent"),
        )
        .sort("n_messages", descending=True)
    )
    assert funnel["n_messages"].sum() == len(outgoing)
    funnel
    return


@app.cell
def _(con, end, pl, start):
    # Engagement after delivery, from the interaction_daily mart (email, WhatsApp, RCS, ...; SMS has none).
    engagement = (
        con.sql(
            "select * from interaction_daily where day >= $start::date and day < $end::date",
            params={"start": start, "end": end},
        )
        .pl()
        .group_by("channel_id", "type")
        .agg(pl.col("n_unique_messages").sum(), pl.col("n_interactions").sum())
        .sort("channel_id", "type")
    )
    engagement
    return


@app.cell
def _(outgoing, pl):
    # Delivery latency of delivered messages per platform, in seconds.
    latency = (
        outgoing.filter(pl.col("status") == "delivered", pl.col("delivery_seconds").is_not_null())
        .group_by("platform")
        .agg(
            n_delivered=pl.len(),
            p50_seconds=pl.col("delivery_seconds").quantile(0.5),
            p90_seconds=pl.col("delivery_seconds").quantile(0.9),
            p99_seconds=pl.col("delivery_seconds").quantile(0.99),
            max_seconds=pl.col("delivery_seconds").max(),
        )
        .sort("p90_seconds", descending=True)
    )
    latency
    return


@app.cell
def _(outgoing, pl):
    # Messages still pending, by age: old pending messages are the ones a re-poll or a carrier should explain.
    pending = outgoing.filter(pl.col("is_final").not_())
    pending.group_by("platform", "status").agg(
        n_pending=pl.len(), oldest_created_at=pl.col("created_at").min()
    ).sort("n_pending", descending=True)
    return


@app.cell
def _(data_dir, mo):
    mo.md(
        f"The same latencies per channel and final status: `bird-etl --data-dir {data_dir} sql --saved "
        "delivery_latency --param start=YYYY-MM-DD --param end=YYYY-MM-DD`."
    )
    return


if __name__ == "__main__":
    app.run()
