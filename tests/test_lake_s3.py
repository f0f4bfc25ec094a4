"""The lake on S3-compatible object storage keeps the local lake's contract, end to end, in an open layout.

Against a real S3 protocol server (moto, tests/s3.py) on loopback: every partition version is whole or
absent (a failed write leaves the old object and uploads nothing), partitions and snapshots are listed and
read back; `bird-etl backfill` with BIRD_ETL_LAKE=s3://... lands every dataset in the bucket, the warehouse,
`bird-etl report` and `bird-etl rebuild` work from it; and any engine reads the lake without our code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.server import run_emulator
from pipelines.emulator.workspaces import generate_workspaces
from pipelines.ingest.channels import CHANNELS
from pipelines.ingest.land import RAW_MESSAGES
from pipelines.ingest.rows import RAW_MESSAGE_ARROW_SCHEMA
from pipelines.ingest.windows import Window
from pipelines.lake import Lake, lake_from_env
from tests.conftest import EMULATOR_NOW
from transforms.schema import CHANNEL_SCHEMA

if TYPE_CHECKING:
    from tests.s3 import S3Server

DAY = dt.date(2026, 11, 20)
SCHEMA = pa.schema([("workspace_id", pa.string()), ("id", pa.string())])
# Two workspaces x 7 days, small, so that the run (interactions included) takes well under a minute.
TWO_WORKSPACES = DatasetSpec(seed=7, days=7, messages_per_day=40, end=dt.date(2026, 1, 15))
SEVEN_DAYS = [TWO_WORKSPACES.start.date() + dt.timedelta(days=i) for i in range(7)]
REPO = Path(__file__).resolve().parents[1]
# How pyarrow reads a dataset of the lake (docs/lake.md): `date` from the path; `workspace_id` is a column of
# every file (stored as string_view, which a hive partition field cannot be), so it is not declared again.
pytest_plugins = ("tests.s3",)  # the s3_server and s3_lake fixtures

BY_DATE = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")


def _batch(ids: list[str], workspace_id: str = "ws") -> pa.Table:
    return pa.table({"workspace_id": [workspace_id] * len(ids), "id": ids}, schema=SCHEMA)


def _write(lake: Lake, ids: list[str], *, workspace_id: str = "ws", day: dt.date = DAY) -> None:
    with lake.write_partition("raw_messages", workspace_id, day, SCHEMA) as writer:
        writer.write_table(_batch(ids, workspace_id))


def _bucket_and_prefix(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


# -- the Lake contract on S3


def test_a_new_version_replaces_the_object_only_on_success(
    s3_lake: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIRD_ETL_LAKE", s3_lake)
    lake = lake_from_env(Path("/nonexistent"))  # BIRD_ETL_LAKE wins over the data directory
    assert lake == Lake(s3_lake) and not lake.is_local
    _write(lake, ["a", "b"])
    bucket, prefix = _bucket_and_prefix(s3_lake)
    key = f"{prefix}/raw_messages/workspace_id=ws/date={DAY.isoformat()}/data.parquet"
    assert s3_server.keys(bucket) == [key]
    assert lake.partition_file("raw_messages", "ws", DAY) == f"{s3_lake}/{key.removeprefix(prefix + '/')}"
    version_1 = s3_server.client().head_object(Bucket=bucket, Key=key)["ETag"]

    with pytest.raises(RuntimeError), lake.write_partition("raw_messages", "ws", DAY, SCHEMA) as writer:
        writer.write_table(_batch(["c"] * 100_000))
        raise RuntimeError("crash in the middle of a write")
    # Nothing was uploaded: the same object, no other key, no multipart upload left open.
    assert s3_server.keys(bucket) == [key]
    assert s3_server.client().head_object(Bucket=bucket, Key=key)["ETag"] == version_1
    assert s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert lake.scan_partition("raw_messages", "ws", DAY).collect()["id"].to_list() == ["a", "b"]

    _write(lake, ["c", "d", "e"])  # the same key again: replaced, nothing appended
    assert s3_server.keys(bucket) == [key]
    assert lake.scan_partition("raw_messages", "ws", DAY).collect()["id"].to_list() == ["c", "d", "e"]


def test_a_failed_upload_is_loud(s3_lake: str) -> None:
    lake = Lake(s3_lake)
    _write(lake, ["a"])
    missing_bucket = Lake(s3_lake.replace("s3://", "s3://no-such-bucket-"))
    with pytest.raises(OSError):
        _write(missing_bucket, ["b"])
    assert missing_bucket.scan_partition("raw_messages", "ws", DAY) is None
    assert lake.scan_partition("raw_messages", "ws", DAY).collect()["id"].to_list() == ["a"]


def test_partitions_scans_and_snapshots(s3_lake: str, s3_server: S3Server) -> None:
    lake = Lake.from_uri(s3_lake + "/")
    assert lake.partitions("raw_messages") == []
    assert lake.scan_partition("raw_messages", "ws", DAY) is None
    assert lake.scan_snapshot("channels", "ws") is None
    next_day = DAY + dt.timedelta(days=1)
    _write(lake, ["b1"], workspace_id="wb", day=next_day)
    _write(lake, ["a1", "a2"], workspace_id="wa", day=DAY)
    _write(lake, ["a3"], workspace_id="wa", day=next_day)
    lake.write_snapshot("channels", "wa", pa.table({"channel_id": ["c1", "c2"]}))
    lake.write_snapshot("channels", "wa", pa.table({"channel_id": ["c3"]}))  # replaced whole
    bucket, prefix = _bucket_and_prefix(s3_lake)
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key=f"{prefix}/raw_messages/README.txt", Body=b"not a partition")
    client.put_object(
        Bucket=bucket, Key=f"{prefix}/raw_messages_old/workspace_id=wa/date=2020-01-01/data.parquet"
    )

    assert lake.partitions("raw_messages") == [("wa", DAY), ("wa", next_day), ("wb", next_day)]
    assert lake.partitions("channels") == []  # a snapshot is not a daily partition
    assert sorted(lake.scan("raw_messages").collect()["id"].to_list()) == ["a1", "a2", "a3", "b1"]
    assert lake.scan_snapshot("channels", "wa").collect()["channel_id"].to_list() == ["c3"]
    assert lake.snapshot_file("channels", "wa") == f"{s3_lake}/channels/workspace_id=wa/data.parquet"
    # Projection works on the downloaded object as on a local file.
    assert lake.scan_partition("raw_messages", "wa", DAY).select("id").collect().columns == ["id"]


def test_readers_racing_a_writer_see_one_whole_version(s3_lake: str) -> None:
    lake = Lake(s3_lake)
    versions = [[f"v{n}-{i}" for i in range(1 + 5_000 * (n % 3))] for n in range(8)]  # sizes differ
    _write(lake, versions[0])
    done = threading.Event()

    def replace_again_and_again() -> None:
        for ids in versions[1:]:
            _write(lake, ids)
        done.set()

    writer = threading.Thread(target=replace_again_and_again)
    writer.start()
    seen = []
    while not done.is_set():
        seen.append(lake.scan_partition("raw_messages", "ws", DAY).collect()["id"].to_list())
    writer.join()
    assert all(ids in versions for ids in seen)
    assert len({ids[0] for ids in seen}) >= 2  # the reads did race the writes


# -- end to end: bird-etl backfill, report and rebuild on an S3 lake


def _cli(args: list[str], env: dict[str, str], data_dir: Path) -> str:
    command = [sys.executable, "-m", "pipelines.cli", "--data-dir", str(data_dir), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _warehouse_count(data_dir: Path, table: str) -> int:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(f"select count(*) from {table}").fetchone()[0]


def test_two_workspaces_backfill_report_and_rebuild_on_an_s3_lake(
    s3_lake: str, s3_server: S3Server, tmp_path: Path
) -> None:
    """The issue's acceptance: two workspaces x 7 days land in the bucket, and the report shows both."""
    workspaces = generate_workspaces(TWO_WORKSPACES, 2, now=EMULATOR_NOW)
    with run_emulator(workspaces=workspaces) as emulator:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BIRD_")},
            **s3_server.environ(),
            "BIRD_ETL_LAKE": s3_lake,
            "BIRD_API_URL": emulator.base_url,
            "BIRD_WORKSPACES": ",".join(f"ws{i}={w.workspace_id}" for i, w in enumerate(workspaces)),
            **{f"BIRD_ACCESS_KEY_WS{i}": w.access_key for i, w in enumerate(workspaces)},
            "BIRD_RATE_LIMIT_PER_S": "400",
            "DAGSTER_HOME": str(tmp_path / "dagster"),
        }
        first, last = SEVEN_DAYS[0].isoformat(), SEVEN_DAYS[-1].isoformat()
        window = Window(Window.day(SEVEN_DAYS[0]).start, Window.day(SEVEN_DAYS[-1]).end)
        truth = {w.workspace_id: w.store.ground_truth_ids(window.start, window.end) for w in workspaces}
        _cli(["backfill", "--start", first, "--end", last], env, tmp_path)
        # Each workspace was read with its own key (the emulator answers another workspace's key with a 403,
        # which would have failed the backfill above), and each was read.
        assert all(w.stats.to_dict()["gets_total"] > 0 for w in workspaces)

    bucket, prefix = _bucket_and_prefix(s3_lake)
    keys = s3_server.keys(bucket)
    for ws in truth:
        for dataset in ("raw_messages", "rejected_records", "interaction_fetches"):
            for day in SEVEN_DAYS:
                assert f"{prefix}/{dataset}/workspace_id={ws}/date={day}/data.parquet" in keys, (
                    dataset,
                    keys,
                )
        assert f"{prefix}/channels/workspace_id={ws}/data.parquet" in keys
    assert all(key.startswith(f"{prefix}/") and key.endswith("/data.parquet") for key in keys), keys
    assert not (tmp_path / "lake").exists()  # nothing landed on the local disk

    # The warehouse loaded from the bucket: one row per message of each workspace, tagged with it.
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select workspace_id, id from messages").fetchall()
        partitions = con.execute("select count(distinct (workspace_id, start_at)) from load_log").fetchone()
    assert {ws: {i for w, i in rows if w == ws} for ws in truth} == truth
    assert len(rows) == sum(map(len, truth.values()))
    assert partitions[0] >= 2 * len(SEVEN_DAYS)
    interactions = _warehouse_count(tmp_path, "interactions")
    # An engine that knows nothing of ours reads the same rows from the bucket.
    s3 = pafs.S3FileSystem(endpoint_override=s3_server.endpoint_url, region="eu-west-1")
    raw = ds.dataset(f"{bucket}/{prefix}/raw_messages", filesystem=s3, format="parquet", partitioning=BY_DATE)
    assert raw.count_rows() == len(rows)

    span = ["--start", first, "--end", last]
    report = json.loads(_cli(["report", *span, "--by", "workspace", "--format", "json"], env, tmp_path))
    assert {group["group"]["workspace_id"]: group["n_messages"] for group in report["groups"]} == {
        ws: len(ids) for ws, ids in truth.items()
    }
    one = next(iter(truth))
    only = json.loads(_cli(["report", *span, "--workspace", one, "--format", "json"], env, tmp_path))
    assert only["totals"]["n_messages"] == len(truth[one])
    table = _cli(["report", *span, "--by", "workspace,channel", "--format", "md"], env, tmp_path)
    assert all(ws in table for ws in truth)

    # Rebuild from the bucket alone gives the same warehouse.
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        before = con.execute("select * from messages order by id").fetchall()
    out = _cli(["rebuild"], env, tmp_path)
    assert "rebuilt from" in out
    assert _warehouse_count(tmp_path, "interactions") == interactions
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select * from messages order by id").fetchall() == before


# -- the open layout: any engine reads the lake as it lies, local or in a bucket

READER = """
import json, os, sys
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as fs

root = sys.argv[1]
if root.startswith("s3://"):
    s3 = fs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"], region=os.environ["AWS_REGION"])
    source, filesystem = root.removeprefix("s3://"), s3
    options = {
        "aws_endpoint_url": os.environ["AWS_ENDPOINT_URL"],
        "aws_region": os.environ["AWS_REGION"],
        "aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
        "aws_allow_http": "true",
    }
else:
    source, filesystem, options = root, None, None
columns = ["workspace_id", "id", "date"]
by_date = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")
arrow = ds.dataset(source + "/raw_messages", filesystem=filesystem, format="parquet", partitioning=by_date)
by_arrow = sorted(map(tuple, pl.from_arrow(arrow.to_table()).select(columns).cast(pl.String).rows()))
frame = pl.scan_parquet(root + "/raw_messages/**/*.parquet", hive_partitioning=True, storage_options=options)
by_polars = sorted(map(tuple, frame.select(columns).cast(pl.String).collect().rows()))
channels = ds.dataset(source + "/channels", filesystem=filesystem, format="parquet")
print(json.dumps({"arrow": by_arrow, "polars": by_polars, "channels": channels.to_table().num_rows}))
"""


def test_any_engine_reads_the_lake_as_it_lies_local_or_s3(s3_lake: str, tmp_path: Path) -> None:
    expected = []
    for root in (str(tmp_path / "lake"), s3_lake):
        lake = Lake.from_uri(root)
        for workspace_id, day, ids in (
            ("wa", DAY, ["a1", "a2"]),
            ("wa", DAY + dt.timedelta(days=1), ["a3"]),
            ("wb", DAY, ["b1"]),
        ):
            rows = [{"workspace_id": workspace_id, "id": i, "raw": "{}"} for i in ids]
            with lake.write_partition(RAW_MESSAGES, workspace_id, day, RAW_MESSAGE_ARROW_SCHEMA) as writer:
                writer.write_table(pa.Table.from_pylist(rows, schema=RAW_MESSAGE_ARROW_SCHEMA))
            if root == s3_lake:
                expected += [(workspace_id, i, day.isoformat()) for i in ids]
        channels = pl.DataFrame([{"workspace_id": "wa", "channel_id": "c1"}], schema=CHANNEL_SCHEMA)
        lake.write_snapshot(CHANNELS, "wa", channels.to_arrow())
    (
        tmp_path / "lake" / "raw_messages" / "workspace_id=wa" / f"date={DAY}" / ".data.parquet.x.tmp"
    ).write_bytes(b"a crashed writer's leftover")
    reads = {}
    for root in (str(tmp_path / "lake"), s3_lake):
        # A fresh interpreter that imports pyarrow and polars only: no code of ours is needed to read.
        done = subprocess.run(
            [sys.executable, "-c", READER, root], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        reads[root] = json.loads(done.stdout)
    for read in reads.values():
        assert [tuple(row) for row in read["arrow"]] == sorted(expected)
        assert [tuple(row) for row in read["polars"]] == sorted(expected)
        assert read["channels"] == 1
