"""`python -m bench.synth`: millions of warehouse-shaped messages, generated straight into a warehouse.

For the failure-rate report figure on 10M messages: paging that many through the emulator would take longer
than the measurement is worth, so rows are drawn column by column (numpy, polars; no Python object per row)
with realistic shares of statuses, failure codes, channels, platforms and countries, and loaded with
`warehouse.store.Warehouse.rebuild` (one transaction, one partition per day, marts computed once): the
warehouse the report reads is the one a backfill would have built, minus the lake. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from transforms.schema import CHANNEL_SCHEMA, MESSAGE_SCHEMA
from transforms.vocabulary import FINAL_STATUSES
from warehouse.store import Partition, Warehouse

WORKSPACE_ID = "5b0c9a3e-8f43-4d4e-9a57-1f6f5f0e2d11"
# channel id, platform, name, share of messages
CHANNELS = (
    ("0e7d52a4-4f0e-4bb8-9d0a-8f1c6a0b1c01", "sms", "SMS NL", 0.30),
    ("0e7d52a4-4f0e-4bb8-9d0a-8f1c6a0b1c02", "sms", "SMS global", 0.18),
    ("0e7d52a4-4f0e-4bb8-9d0a-8f1c6a0b1c03", "whatsapp", "WhatsApp", 0.22),
    ("0e7d52a4-4f0e-4bb8-9d0a-8f1c6a0b1c04", "email", "Email", 0.18),
    ("0e7d52a4-4f0e-4bb8-9d0a-8f1c6a0b1c05", "rcs", "RCS", 0.05),
    ("0e7d52a4-4f0e-4bb8-9d0a-8f1c6a0b1c06", "line", "LINE", 0.04),
    ("0e7d52a4-4f0e-4bb8-9d0a-8f1c6a0b1c07", "telegram", "Telegram", 0.03),
)
RECEIVER_KIND = {"sms": "phonenumber", "whatsapp": "phonenumber", "rcs": "phonenumber"} | {
    "email": "emailaddress",
    "line": "lineuserid",
    "telegram": "telegramid",
}
COUNTRIES = (("NL", 0.25), ("DE", 0.15), ("US", 0.15), ("BR", 0.12), ("IN", 0.12), ("GB", 0.08))
COUNTRIES += (("FR", 0.05), ("ID", 0.04), ("MX", 0.03), ("ZA", 0.01))
INCOMING_SHARE = 0.08
# Outgoing statuses and their shares; incoming messages are "delivered".
STATUSES = (("delivered", 0.86), ("delivery_failed", 0.055), ("sending_failed", 0.02), ("rejected", 0.01))
STATUSES += (("sent", 0.035), ("accepted", 0.01), ("processing", 0.005), ("deleted", 0.005))
FAILED = ("delivery_failed", "sending_failed", "rejected")
# failure code, description as Bird serves it, source code, source name, share of failures (one unknown code)
FAILURES = (
    (15005, "unknown_subscriber", "1", "carrier", 0.30),
    (15001, "received_network_error", "34", "carrier", 0.22),
    (12003, "source and destination not allowed", "", "bird", 0.15),
    (14001, "customer error", "", "bird", 0.10),
    (11002, "invalid input", "", "bird", 0.08),
    (12006, "invalid message", "131009", "whatsapp", 0.07),
    (12001, "dependency error", "", "bird", 0.05),
    (19999, "a code Bird added later", "", "bird", 0.03),
)


def channels_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "workspace_id": [WORKSPACE_ID] * len(CHANNELS),
            "channel_id": [c[0] for c in CHANNELS],
            "platform": [c[1] for c in CHANNELS],
            "name": [c[2] for c in CHANNELS],
            "identifier": [f"+3197{i:06d}" for i in range(len(CHANNELS))],
            "status": ["active"] * len(CHANNELS),
            "connector_id": [None] * len(CHANNELS),
        },
        schema=CHANNEL_SCHEMA,
    )


def _pick(rng: np.random.Generator, choices: tuple[tuple, ...], n: int) -> np.ndarray:
    """Indexes into `choices` drawn by the share in each choice's last field."""
    shares = np.array([c[-1] for c in choices], dtype=float)
    return rng.choice(len(choices), size=n, p=shares / shares.sum())


def _column(values: list, index: np.ndarray, dtype: pl.DataType) -> pl.Series:
    return pl.Series(values, dtype=dtype).gather(index)


def _uuids(rng: np.random.Generator, n: int) -> pl.Series:
    raw = pl.Series("id", np.frombuffer(rng.bytes(16 * n), dtype="S16").tolist(), dtype=pl.Binary)
    text = pl.col("id").bin.encode("hex")
    parts = [text.str.slice(a, b - a) for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))]
    return raw.to_frame().select(pl.concat_str(parts, separator="-")).to_series()


def day_messages(day: dt.date, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """`n` messages created on `day`, one row each, in MESSAGE_SCHEMA."""
    day_start = dt.datetime.combine(day, dt.time(), dt.UTC)
    created_us = np.sort(rng.integers(0, 86_400_000, size=n)) * 1000  # Bird stamps milliseconds
    channel = _pick(rng, CHANNELS, n)
    incoming = rng.random(n) < INCOMING_SHARE
    status = np.where(incoming, 0, _pick(rng, STATUSES, n))
    status_names = [s[0] for s in STATUSES]
    is_failed = np.isin(status, [status_names.index(s) for s in FAILED])
    failure = _pick(rng, FAILURES, n)
    delivered = status == 0
    delay_s = np.where(delivered, rng.lognormal(1.2, 1.0, size=n), rng.exponential(30.0, size=n))
    platforms = [c[1] for c in CHANNELS]
    frame = pl.DataFrame(
        {
            "id": _uuids(rng, n),
            "channel_index": channel,
            "status": _column(status_names, status, pl.String),
            "direction": np.where(incoming, "incoming", "outgoing"),
            "created_us": created_us,
            "delay_us": (delay_s * 1e6).astype(np.int64),
            "failure_index": np.where(is_failed, failure, -1),
            "delivery_seconds": np.where(delivered & ~incoming, delay_s, np.nan),
            "country_code": _column([c[0] for c in COUNTRIES], _pick(rng, COUNTRIES, n), pl.String),
        }
    )
    created_at = pl.lit(day_start, dtype=MESSAGE_SCHEMA["created_at"]) + pl.duration(
        microseconds=pl.col("created_us")
    )
    failure_of = pl.col("failure_index").replace_strict  # null for the rows that did not fail
    return frame.select(
        "id",
        workspace_id=pl.lit(WORKSPACE_ID),
        channel_id=pl.col("channel_index").replace_strict(range(len(CHANNELS)), [c[0] for c in CHANNELS]),
        platform=pl.col("channel_index").replace_strict(range(len(CHANNELS)), platforms),
        direction="direction",
        status="status",
        is_known_status=pl.lit(True),
        reason=pl.lit(None, pl.String),
        details=pl.lit(None, pl.String),
        created_at=created_at,
        updated_at=created_at + pl.duration(microseconds=pl.col("delay_us")),
        last_status_at=created_at + pl.duration(microseconds=pl.col("delay_us")),
        scheduled_for=pl.lit(None, MESSAGE_SCHEMA["scheduled_for"]),
        sender_identifier=pl.lit("+31970000000"),
        receiver_identifier=pl.lit(None, pl.String),
        receiver_kind=pl.col("channel_index").replace_strict(
            range(len(CHANNELS)), [RECEIVER_KIND[p] for p in platforms]
        ),
        country_code="country_code",
        body_type=pl.lit("text"),
        parts_count=pl.lit(1, pl.Int32),
        tags=pl.lit(None, pl.List(pl.String)),
        reference=pl.lit(None, pl.String),
        batch_id=pl.lit(None, pl.String),
        failure_code=failure_of(range(len(FAILURES)), [f[0] for f in FAILURES], default=None),
        failure_description=failure_of(range(len(FAILURES)), [f[1] for f in FAILURES], default=None),
        failure_source_code=failure_of(range(len(FAILURES)), [f[2] or None for f in FAILURES], default=None),
        failure_source_name=failure_of(range(len(FAILURES)), [f[3] for f in FAILURES], default=None),
        is_final=pl.col("status").is_in(sorted(FINAL_STATUSES)),
        delivery_seconds=pl.col("delivery_seconds").fill_nan(None),
    ).cast(dict(MESSAGE_SCHEMA))


def partitions(rows: int, days: int, end: dt.date, seed: int) -> Iterator[Partition]:
    """One partition per day (the last `days` before `end`), `rows` messages in all, drawn day by day."""
    rng = np.random.default_rng(seed)
    per_day = np.full(days, rows // days)
    per_day[: rows % days] += 1
    for index, n in enumerate(per_day):
        day = end - dt.timedelta(days=days - index)
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        yield WORKSPACE_ID, start, start + dt.timedelta(days=1), day_messages(day, int(n), rng)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="a new directory for the warehouse")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True, help="exclusive UTC date")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    warehouse = Warehouse(args.data_dir)
    warehouse.migrate()
    warehouse.load_channels(channels_frame())
    results = warehouse.rebuild(partitions(args.rows, args.days, args.end, args.seed))
    line = {
        "rows": sum(result.n_rows for result in results),
        "partitions": len(results),
        "workspace_id": WORKSPACE_ID,
        "seconds": round(time.perf_counter() - started, 1),
        "warehouse_bytes": warehouse.path.stat().st_size,
    }
    print(orjson.dumps(line).decode(), flush=True)


if __name__ == "__main__":
    main()
