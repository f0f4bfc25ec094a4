"""The DuckDB warehouse: partition loads into a private working database, published as an atomic snapshot.

DuckDB lets one process write a file or many read it, and its CLI opens files read-write by default. So the
loader never opens the analyst-facing `warehouse.duckdb`: it writes `.warehouse/work.duckdb` (writers take a
file lock in turn) and after each load copies it beside `warehouse.duckdb` and renames the copy over it.
Sessions that already have the old file open keep reading the old inode; new sessions see the new snapshot.
README.md ("Concurrency") explains the consequences for analysts.
"""

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl
from filelock import FileLock

from transforms import marts, vocabulary
from transforms.schema import CHANNEL_SCHEMA, INTERACTION_SCHEMA, MESSAGE_SCHEMA, REJECTED_RECORD_SCHEMA
from warehouse.migrate import apply_migrations
from warehouse.sqlfiles import PACKAGE_DIR, query, run, statement

SEEDS_DIR = PACKAGE_DIR / "seeds"
SNAPSHOT_NAME = "warehouse.duckdb"
ENV_DATA_DIR = "BIRD_ETL_DATA_DIR"
DEFAULT_DATA_DIR = "data"
STORAGE_COMPATIBILITY = "v1.4.0"
_TEMP_PREFIX, _TEMP_SUFFIX = ".warehouse.", ".tmp"
# DuckDB's buffer pool for loads: beyond it, staged rows, sorts and joins spill to disk (beside the working
# database), so a big day's load stays within bounds. A 1.1M-message day: peak RSS of the load 2.4 GiB
# before (DuckDB's default is 80% of RAM), 0.7 GiB at 256 MB for about 5 s more CPU than at 1 GB.
DUCKDB_MEMORY_LIMIT = "256MB"
# One thread: a load shares the machine with the flattening and paging around it, and a second thread took
# more CPU for a 7-day batch's insert (0.6-1.3 s against 0.5-0.6 s: its partial row groups were sometimes
# merged again at the checkpoint) without shortening a backfill.
DUCKDB_THREADS = 1
# Rows a mart refresh reads into polars at a time (in whole groups, see `_in_chunks`), and the batches they
# arrive in when there is more than one chunk (DuckDB's default of 131,072 added 90 MB to a 3M-row day's
# peak RSS).
MART_CHUNK_ROWS = 200_000
MART_BATCH_ROWS = 20_000
_SPOOL_PREFIX = ".spool."
_BATCH_PARTITION_SCHEMA = pl.Schema(
    {
        "partition_index": pl.Int32,
        "workspace_id": pl.String,
        "start_at": pl.Datetime("us", "UTC"),
        "end_at": pl.Datetime("us", "UTC"),
    }
)
CHANNEL_DAY = ("workspace_id", "day", "channel_id")
DELIVERY_CHUNK_GRAIN = (*CHANNEL_DAY, "country_code", "direction")

FAILURE_CODE_SEED_SCHEMA = pl.Schema({"failure_code": pl.Int32, "name": pl.String, "description": pl.String})
FAILURE_SOURCE_SEED_SCHEMA = pl.Schema(
    {"failure_source_name": pl.String, "description": pl.String, "is_platform": pl.Boolean}
)

# A partition's rows: one frame, or its slices one after another (each is written as it comes, so a big day
# never sits in memory whole).
Rows = pl.DataFrame | Iterable[pl.DataFrame]
Partition = tuple[str, datetime, datetime, Rows]
# Partitioned relations: their contract, and the column that must fall in the window (interactions belong to
# the partition of their message, so their own created_at may lie after it).
_PARTITIONED: dict[str, tuple[pl.Schema, str | None]] = {
    "messages": (MESSAGE_SCHEMA, "created_at"),
    "interactions": (INTERACTION_SCHEMA, None),
}


@dataclass(frozen=True)
class LoadResult:
    """What one partition load changed."""

    relation: str
    workspace_id: str
    start: datetime
    end: datetime
    n_rows: int  # rows the load wrote (the partition's rows, one per id)
    n_replaced: int  # rows it deleted first (0 on a first load)
    days: tuple[date, ...]  # UTC days whose mart rows it recomputed


@dataclass(frozen=True)
class PartitionLoad:
    """One partition to load: its rows (MESSAGE_SCHEMA or INTERACTION_SCHEMA), whole or in slices, and, for
    messages, its quarantine (REJECTED_RECORD_SCHEMA; None keeps the partition's quarantine as it is)."""

    workspace_id: str
    start: datetime
    end: datetime
    rows: Rows
    rejected: pl.DataFrame | None = None  # messages only


def data_dir_from_env() -> Path:
    """The data directory (lake, warehouse, Dagster instance): $BIRD_ETL_DATA_DIR, default ./data."""
    return Path(os.environ.get(ENV_DATA_DIR, "").strip() or DEFAULT_DATA_DIR).resolve()


class Warehouse:
    """The archive's DuckDB warehouse under `data_dir`; every public write publishes a new snapshot."""

    def __init__(self, data_dir: Path, *, lock_timeout: float = 600.0) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / SNAPSHOT_NAME
        self.work_path = self.data_dir / ".warehouse" / "work.duckdb"
        self._lock = FileLock(self.work_path.parent / "writer.lock", timeout=lock_timeout)

    # -- writing ------------------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending migrations and refresh the seeds; returns the versions applied now."""
        with self._publishing() as con:
            return self._upgrade(con)

    def load_messages(
        self,
        *,
        workspace_id: str,
        start: datetime,
        end: datetime,
        messages: pl.DataFrame,
        rejected: pl.DataFrame | None = None,
    ) -> LoadResult:
        """Replace the messages partition (workspace, created_at in [start, end)) and its days' marts.

        `rejected` (REJECTED_RECORD_SCHEMA), when given, replaces the partition's quarantine in the same
        transaction.
        """
        load = PartitionLoad(workspace_id, start, end, messages, rejected)
        return self.load_partitions("messages", [load])[0]

    def load_interactions(
        self, *, workspace_id: str, start: datetime, end: datetime, interactions: pl.DataFrame
    ) -> LoadResult:
        """Replace the interactions of the workspace's messages created in [start, end) (load those first)."""
        return self.load_partitions("interactions", [PartitionLoad(workspace_id, start, end, interactions)])[
            0
        ]

    def load_partitions(
        self, relation: Literal["messages", "interactions"], loads: Sequence[PartitionLoad]
    ) -> list[LoadResult]:
        """Replace many partitions of one relation in one transaction, their days' marts once; publish once.

        The result is what `load_messages` / `load_interactions` for each partition, in order, would leave (a
        later partition holding an id wins over an earlier one, as with successive loads), decided for the
        batch at once (see warehouse/sql/resolve_batch.sql). All or nothing: every partition is checked (slice
        by slice, as it is staged) before the transaction opens, and when any is refused (another schema, a
        row outside its window) none is loaded. Each result lists the days whose marts the whole batch
        recomputed (the union over its partitions), since they are recomputed once, together.
        """
        if relation not in _PARTITIONED:
            raise ValueError(f"unknown partitioned relation {relation!r}")
        if relation != "messages" and any(load.rejected is not None for load in loads):
            raise ValueError("rejected records belong to messages loads only")
        if not loads:
            return []
        rejected = [
            None if load.rejected is None else _conform(load.rejected, REJECTED_RECORD_SCHEMA, "rejected")
            for load in loads
        ]
        with self._publishing() as con, self._spool() as spool:
            self._upgrade(con)
            files = self._stage(spool, relation, loads)
            with _transaction(con):
                counts = self._replace(con, relation, loads, files)
                for load, quarantine in zip(loads, rejected, strict=True):
                    if quarantine is not None:
                        con.register("incoming_rejected", quarantine)
                        run(
                            con,
                            "replace_rejected_records",
                            workspace_id=load.workspace_id,
                            partition_date=load.start.date(),
                        )
                        con.unregister("incoming_rejected")
                if relation == "messages":
                    self._refresh_failure_codes(con)
                self._refresh_marts(con)
                days = tuple(query(con, "affected_day_list")["day"].to_list())
        return [
            LoadResult(relation, load.workspace_id, load.start, load.end, n_rows, n_replaced, days)
            for load, (n_rows, n_replaced) in zip(loads, counts, strict=True)
        ]

    def load_channels(self, channels: pl.DataFrame) -> None:
        """Replace the channels of every workspace present in `channels`."""
        channels = _conform(channels, CHANNEL_SCHEMA, "channels")
        with self._publishing() as con:
            self._upgrade(con)
            with _transaction(con):
                con.register("incoming", channels)
                run(con, "replace_channels")

    def rebuild(
        self, partitions: Iterable[Partition], *, interactions: Iterable[Partition] = ()
    ) -> list[LoadResult]:
        """Replace all messages and interactions with the given lake partitions, in one transaction.

        Each item is (workspace_id, start, end, frame). The marts are recomputed once at the end (so the
        results carry no days) and one snapshot is published. Channels and the failure dimensions are kept.
        """
        batches = [
            (
                relation,
                [PartitionLoad(workspace_id, start, end, rows) for workspace_id, start, end, rows in items],
            )
            for relation, items in (("messages", partitions), ("interactions", interactions))
        ]
        results = []
        with self._publishing() as con, self._spool() as spool:
            self._upgrade(con)
            staged = [(relation, loads, self._stage(spool, relation, loads)) for relation, loads in batches]
            with _transaction(con):
                run(con, "truncate_partitioned")
                for relation, loads, files in staged:
                    counts = self._replace(con, relation, loads, files) if loads else []
                    results += [
                        LoadResult(relation, load.workspace_id, load.start, load.end, *load_counts, days=())
                        for load, load_counts in zip(loads, counts, strict=True)
                    ]
                self._refresh_failure_codes(con)
                run(con, "all_days")
                self._refresh_marts(con)
        return results

    def publish(self) -> None:
        """Atomically replace `warehouse.duckdb` with a copy of the working database (see `_publishing`)."""
        with self._publishing():
            pass

    # -- reading ------------------------------------------------------------------------------------------

    def connect_readonly(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection on the latest published snapshot.

        `duckdb.connect(path)` would hand back the process's cached instance of an older snapshot while any
        connection to it is open; attaching from a fresh in-memory database always opens the current file.
        """
        if not self.path.exists():
            raise FileNotFoundError(
                f"{self.path} is not published yet: run Warehouse.migrate() or a load first"
            )
        con = duckdb.connect()
        con.execute("attach $path as warehouse (read_only)", {"path": str(self.path)})
        con.execute("use warehouse")
        con.execute("set TimeZone = 'UTC'")
        return con

    # -- internals ----------------------------------------------------------------------------------------

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """Serialize writers across processes."""
        self.work_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            yield

    @contextmanager
    def _publishing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The working database, for one writer at a time, published when the block succeeds.

        Publishing checkpoints the working database, then writes a copy beside the target, fsyncs it and
        renames it over `warehouse.duckdb` (atomic on POSIX), so a reader sees the old snapshot or the new
        one, never a mix. A write-ahead log left at `warehouse.duckdb.wal` by an analyst's read-write session
        belongs to the old file: it is discarded, since DuckDB refuses to open a database whose WAL does not
        match it.
        """
        with self._writer():
            with self._work_connection() as con:
                yield con
                con.execute("checkpoint")
            for leftover in self.data_dir.glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):
                leftover.unlink()  # a copy from a publisher that crashed (we hold the writer lock)
            fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=self.data_dir)
            os.close(fd)
            temp_path = Path(temp_name)
            try:
                shutil.copyfile(self.work_path, temp_path)
                temp_path.chmod(0o644)
                _fsync(temp_path)
                self._discard_stale_wal()
                os.replace(temp_path, self.path)
                self._discard_stale_wal()
                _fsync(self.data_dir)
            finally:
                temp_path.unlink(missing_ok=True)

    @contextmanager
    def _work_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The working database, with the loader's settings and macro `utc_day`; callers hold the writer lock.

        It is created in an older storage format that the DuckDB CLI on PyPI (1.5) and other tools embedding
        DuckDB 1.4+ can open; the published snapshot is a copy of it.
        """
        con = duckdb.connect(
            str(self.work_path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}
        )
        try:
            con.execute("set TimeZone = 'UTC'")
            con.execute("set enable_progress_bar = false")
            con.execute("set memory_limit = $limit", {"limit": DUCKDB_MEMORY_LIMIT})
            con.execute("set threads = $threads", {"threads": DUCKDB_THREADS})
            run(con, "utc_day")
            yield con
        finally:
            con.close()

    def _upgrade(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """Apply pending migrations and reload the seeds when they differ from what the database holds (a
        seed edit needs no migration; comparing is cheaper than reloading, which writes)."""
        applied = apply_migrations(con)
        sources = _read_seed("failure_sources.csv", FAILURE_SOURCE_SEED_SCHEMA)
        documented = marts.failure_code_dimension(
            _read_seed("failure_codes.csv", FAILURE_CODE_SEED_SCHEMA), pl.Series(dtype=pl.Int32)
        )
        current = _same_rows(query(con, "failure_sources"), sources) and _same_rows(
            query(con, "failure_codes").filter(pl.col("is_known")), documented
        )
        if applied or not current:
            with _transaction(con):
                con.register("seed", sources)
                run(con, "replace_failure_sources")
                self._refresh_failure_codes(con)
        return applied

    @contextmanager
    def _spool(self) -> Iterator[Path]:
        """A scratch directory beside the working database for a load's staged slices; callers hold the
        writer lock, so a directory left by a writer that crashed is removed first."""
        for leftover in self.work_path.parent.glob(f"{_SPOOL_PREFIX}*"):
            shutil.rmtree(leftover)
        with tempfile.TemporaryDirectory(prefix=_SPOOL_PREFIX, dir=self.work_path.parent) as spool:
            yield Path(spool)

    def _stage(self, spool: Path, relation: str, loads: Sequence[PartitionLoad]) -> list[str]:
        """Check the partitions' rows slice by slice and spool each slice to a Parquet file, with its
        partition's index in the batch and its rows numbered across the batch (`staged_row`); returns the
        files. All before the transaction opens, so that a refused slice loads nothing; in files, so that a
        big day never sits in memory, and uncompressed Parquet, which costs half what appending the rows to a
        DuckDB table does (0.7 + 0.35 against 1.9 us a message written and read).
        """
        schema, window_column = _PARTITIONED[relation]
        files: list[str] = []
        n_staged = 0
        for index, load in enumerate(loads):
            for rows in [load.rows] if isinstance(load.rows, pl.DataFrame) else load.rows:
                frame = _conform(rows, schema, relation)
                _check_partition(
                    frame,
                    workspace_id=load.workspace_id,
                    start=load.start,
                    end=load.end,
                    window_column=window_column,
                )
                files.append(
                    _write_slice(spool / f"{relation}-{len(files):06d}.parquet", frame, index, n_staged)
                )
                n_staged += frame.height
        if not files:  # not one slice: a file without rows, so that the batch reads as an empty one
            files.append(_write_slice(spool / f"{relation}-empty.parquet", pl.DataFrame(schema=schema), 0, 0))
        return files

    def _replace(
        self, con: duckdb.DuckDBPyConnection, relation: str, loads: Sequence[PartitionLoad], files: list[str]
    ) -> list[tuple[int, int]]:
        """Replace the staged partitions (`files`, see `_stage`) and log them, leaving temp table
        `affected_days`; returns each partition's (rows written, rows deleted)."""
        con.register(
            "batch_partitions",
            pl.DataFrame(
                [(index, load.workspace_id, load.start, load.end) for index, load in enumerate(loads)],
                schema=_BATCH_PARTITION_SCHEMA,
                orient="row",
            ),
        )
        span = {"first_start": min(load.start for load in loads), "last_end": max(load.end for load in loads)}
        run(con, f"stage_{relation}", spool=files, **span)
        run(con, "resolve_batch")
        run(con, f"replace_{relation}", spool=files)
        run(con, "log_load", relation=relation)
        counts = query(con, "partition_counts").rows()
        con.unregister("batch_partitions")
        return counts

    def _refresh_failure_codes(self, con: duckdb.DuckDBPyConnection) -> None:
        """failure_codes = the seed plus every code observed in messages (unknown ones flagged)."""
        seed = _read_seed("failure_codes.csv", FAILURE_CODE_SEED_SCHEMA)
        observed = query(con, "observed_failure_codes")["failure_code"]
        con.register("dimension", marts.failure_code_dimension(seed, observed))
        run(con, "replace_failure_codes")

    def _refresh_marts(self, con: duckdb.DuckDBPyConnection) -> None:
        """Recompute the mart rows of the (workspace, day) pairs in temp table `affected_days`.

        Each mart reads its input in chunks of whole groups of a grain its own grain refines, so that a big
        day never sits in polars whole: delivery by channel, country and direction, failures (failed
        messages only) and interactions by channel; interaction_daily takes its delivered counts from
        delivery_daily. The inputs are read within the span of the days, so that other days' row groups
        are skipped.
        """
        span = query(con, "affected_day_bounds").row(0, named=True)
        failure_codes = query(con, "failure_codes").lazy()
        daily = pl.concat(
            marts.delivery_daily(rows).collect()
            for rows in _in_chunks(con, "messages_of_affected_days", DELIVERY_CHUNK_GRAIN, **span)
        )
        breakdown = pl.concat(
            marts.failure_breakdown(rows, failure_codes).collect()
            for rows in _in_chunks(
                con,
                "failed_messages_of_affected_days",
                CHANNEL_DAY,
                failed_statuses=sorted(vocabulary.FAILED_STATUSES),
                **span,
            )
        )
        interaction_daily = pl.concat(
            marts.interaction_daily(rows, daily.lazy()).collect()
            for rows in _in_chunks(con, "interactions_of_affected_days", CHANNEL_DAY, **span)
        )
        con.register("new_delivery_daily", daily)
        con.register("new_failure_breakdown", breakdown)
        con.register("new_interaction_daily", interaction_daily)
        run(con, "replace_mart_days")

    def _discard_stale_wal(self) -> None:
        self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)


def _in_chunks(
    con: duckdb.DuckDBPyConnection, name: str, grain: Sequence[str], **params: object
) -> Iterator[pl.LazyFrame]:
    """The rows of query `name` (warehouse/sql/<name>.sql, with a `day` column), about MART_CHUNK_ROWS at a
    time in whole groups of `grain`, without `day`. A mart whose grain refines `grain` has each of its
    groups in one chunk, so its rows over the chunks, put together, are its rows over the whole. Always
    yields at least one (maybe empty) chunk, so the marts keep their schema.

    The rows are read once. Beyond one chunk, DuckDB numbers each group's chunk and streams the rows in chunk
    order (a sort, within its memory limit), MART_BATCH_ROWS at a time.
    """
    source = statement(name)
    (n_rows,) = con.sql(f"select count(*) from ({source})", params=params or None).fetchall()[0]
    if n_rows <= MART_CHUNK_ROWS:
        yield con.sql(f"select * exclude (day) from ({source})", params=params or None).pl().lazy()
        return
    keys = ", ".join(grain)
    con.execute(
        f"""create or replace temp table chunk_of_group as
        select {keys}, (sum(n) over (order by {keys} rows unbounded preceding) - n) // $rows as chunk
        from (select {keys}, count(*) as n from ({source}) group by all)""",
        {**params, "rows": MART_CHUNK_ROWS},
    )
    same_group = " and ".join(f"source.{key} is not distinct from chunk_of_group.{key}" for key in grain)
    batches = con.sql(
        f"""select source.* exclude (day), chunk_of_group.chunk
        from ({source}) as source join chunk_of_group on {same_group}
        order by chunk_of_group.chunk""",
        params=params or None,
    ).to_arrow_reader(MART_BATCH_ROWS)
    chunk, rows = 0, []
    for batch in batches:
        for (number,), part in (
            pl.from_arrow(batch).partition_by("chunk", as_dict=True, maintain_order=True).items()
        ):
            if number != chunk:
                yield pl.concat(rows).lazy()
                chunk, rows = number, []
            rows.append(part.drop("chunk"))
    yield pl.concat(rows).lazy()


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def _conform(frame: pl.DataFrame, schema: pl.Schema, what: str) -> pl.DataFrame:
    """`frame` with exactly the contract's columns in order; a missing column or another dtype is an error."""
    problems = [
        f"{name}: expected {dtype}, got {frame.schema.get(name, 'nothing')}"
        for name, dtype in schema.items()
        if frame.schema.get(name) != dtype
    ]
    extra = sorted(set(frame.columns) - set(schema.names()))
    if problems or extra:
        raise ValueError(f"{what} frame does not match its schema: {[*problems, f'unexpected {extra}']}")
    return frame.select(schema.names())


def _check_partition(
    frame: pl.DataFrame, *, workspace_id: str, start: datetime, end: datetime, window_column: str | None
) -> None:
    """Every row belongs to the partition, so replacing it stays idempotent."""
    if start.utcoffset() is None or end.utcoffset() is None or not start < end:
        raise ValueError(f"partition window must be timezone-aware with start < end, got [{start}, {end})")
    outside = pl.col("workspace_id") != workspace_id
    if window_column is not None:
        outside = outside | (pl.col(window_column) < start) | (pl.col(window_column) >= end)
    n_outside = frame.filter(outside).height
    if n_outside:
        raise ValueError(
            f"{n_outside} rows fall outside partition {workspace_id} [{start.isoformat()}, {end.isoformat()})"
        )


def _write_slice(path: Path, frame: pl.DataFrame, partition_index: int, first_row: int) -> str:
    """Spool a checked slice (see `Warehouse._stage`); returns its path."""
    frame.with_columns(
        partition_index=pl.lit(partition_index, pl.Int32),
        staged_row=pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64),
    ).write_parquet(path, compression="uncompressed", statistics=False)
    return str(path)


def _same_rows(frame: pl.DataFrame, other: pl.DataFrame) -> bool:
    """Whether two frames hold the same rows (and schema), in any order."""
    return frame.sort(frame.columns).equals(other.sort(other.columns))


def _read_seed(name: str, schema: pl.Schema) -> pl.DataFrame:
    return pl.read_csv(SEEDS_DIR / name, schema=schema)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
