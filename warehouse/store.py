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
# Rows a mart refresh reads into polars at a time (in whole groups, see `_in_chunks`).
MART_CHUNK_ROWS = 200_000
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
        with self._writer():
            with self._work_connection() as con:
                applied = self._upgrade(con)
            self.publish()
        return applied

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

        Each load is what `load_messages` / `load_interactions` does for one partition, in order (a later
        partition holding an id wins over an earlier one, as with successive loads). All or nothing: every
        partition is checked (slice by slice, as it is staged) before the transaction opens, and when any is
        refused (another schema, a row outside its window) none is loaded. Each result lists the days whose
        marts the whole batch recomputed (the union over its partitions), since they are recomputed once,
        together.
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
        counts = []
        with self._writer():
            with self._work_connection() as con:
                self._upgrade(con)
                with self._staging(con):
                    for index, load in enumerate(loads):
                        self._stage(con, relation, index, load)
                    with _transaction(con):
                        run(con, "create_batch_days")
                        for index, (load, quarantine) in enumerate(zip(loads, rejected, strict=True)):
                            counts.append(self._replace(con, relation, index, load))
                            run(con, "collect_batch_days")
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
                        run(con, "batch_affected_days")
                        self._refresh_marts(con)
                        days = tuple(query(con, "affected_day_list")["day"].to_list())
            self.publish()
        return [
            LoadResult(relation, load.workspace_id, load.start, load.end, n_rows, n_replaced, days)
            for load, (n_rows, n_replaced) in zip(loads, counts, strict=True)
        ]

    def load_channels(self, channels: pl.DataFrame) -> None:
        """Replace the channels of every workspace present in `channels`."""
        channels = _conform(channels, CHANNEL_SCHEMA, "channels")
        with self._writer():
            with self._work_connection() as con:
                self._upgrade(con)
                with _transaction(con):
                    con.register("incoming", channels)
                    run(con, "replace_channels")
            self.publish()

    def rebuild(
        self, partitions: Iterable[Partition], *, interactions: Iterable[Partition] = ()
    ) -> list[LoadResult]:
        """Replace all messages and interactions with the given lake partitions, in one transaction.

        Each item is (workspace_id, start, end, frame). The marts are recomputed once at the end (so the
        results carry no days) and one snapshot is published. Channels and the failure dimensions are kept.
        """
        loads = [
            (relation, PartitionLoad(workspace_id, start, end, rows))
            for relation, items in (("messages", partitions), ("interactions", interactions))
            for workspace_id, start, end, rows in items
        ]
        results = []
        with self._writer():
            with self._work_connection() as con:
                self._upgrade(con)
                with self._staging(con):
                    for index, (relation, load) in enumerate(loads):
                        self._stage(con, relation, index, load)
                    with _transaction(con):
                        run(con, "truncate_partitioned")
                        for index, (relation, load) in enumerate(loads):
                            counts = self._replace(con, relation, index, load)
                            results.append(
                                LoadResult(
                                    relation, load.workspace_id, load.start, load.end, *counts, days=()
                                )
                            )
                        self._refresh_failure_codes(con)
                        run(con, "all_days")
                        self._refresh_marts(con)
            self.publish()
        return results

    def publish(self) -> None:
        """Atomically replace `warehouse.duckdb` with a copy of the working database.

        The copy is written and fsynced beside the target, then renamed over it (atomic on POSIX), so a reader
        sees the old snapshot or the new one, never a mix. A write-ahead log left at `warehouse.duckdb.wal`
        by an analyst's read-write session belongs to the old file: it is discarded, since DuckDB refuses to
        open a database whose WAL does not match it.
        """
        with self._writer():
            with self._work_connection() as con:
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
        """Serialize writers across processes (reentrant: a load holds it while it publishes)."""
        self.work_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            yield

    @contextmanager
    def _work_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The working database; callers hold the writer lock.

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
            yield con
        finally:
            con.close()

    def _upgrade(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """Apply pending migrations and reload the seeds (cheap, and a seed edit needs no migration)."""
        applied = apply_migrations(con)
        with _transaction(con):
            con.register("seed", _read_seed("failure_sources.csv", FAILURE_SOURCE_SEED_SCHEMA))
            run(con, "replace_failure_sources")
            self._refresh_failure_codes(con)
        return applied

    @contextmanager
    def _staging(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """A scratch in-memory database attached as `staging`, for the rows on their way in. Its tables live
        in DuckDB's buffer pool, so beyond DUCKDB_MEMORY_LIMIT they spill to disk rather than grow."""
        con.execute("attach ':memory:' as staging")
        try:
            for relation in _PARTITIONED:  # relation names come from this table, not from callers
                con.execute(
                    f"create table staging.incoming_{relation} as"
                    f" select 0::integer as partition_index, * from {relation} limit 0"
                )
            yield
        finally:
            con.execute("detach staging")

    def _stage(self, con: duckdb.DuckDBPyConnection, relation: str, index: int, load: PartitionLoad) -> None:
        """Check a partition's rows slice by slice and append them to `staging.incoming_<relation>` as
        partition `index`, outside the load's transaction: DuckDB keeps a transaction's appends in memory (a
        2.2M-message day grew the process by 1 GiB), while committed appends go to disk."""
        schema, window_column = _PARTITIONED[relation]
        slices = [load.rows] if isinstance(load.rows, pl.DataFrame) else load.rows
        for rows in slices:
            frame = _conform(rows, schema, relation)
            _check_partition(
                frame,
                workspace_id=load.workspace_id,
                start=load.start,
                end=load.end,
                window_column=window_column,
            )
            con.register("incoming", frame.to_arrow())
            con.execute(
                f"insert into staging.incoming_{relation} by name"
                " select $index as partition_index, * from incoming",
                {"index": index},
            )
            con.unregister("incoming")

    def _replace(
        self, con: duckdb.DuckDBPyConnection, relation: str, index: int, load: PartitionLoad
    ) -> tuple[int, int]:
        """Replace one staged partition and log it; returns (rows written, rows deleted)."""
        window = {"workspace_id": load.workspace_id, "start": load.start, "end": load.end}
        run(con, f"stage_{relation}", partition_index=index)
        run(con, f"replace_{relation}", **window)
        run(con, "log_load", relation=relation, **window)
        n_rows, n_replaced = query(con, "staged_counts").row(0)
        return n_rows, n_replaced

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
        delivery_daily.
        """
        failure_codes = query(con, "failure_codes").lazy()
        daily = pl.concat(
            marts.delivery_daily(rows).collect()
            for rows in _in_chunks(con, "messages_of_affected_days", DELIVERY_CHUNK_GRAIN)
        )
        breakdown = pl.concat(
            marts.failure_breakdown(rows, failure_codes).collect()
            for rows in _in_chunks(
                con,
                "failed_messages_of_affected_days",
                CHANNEL_DAY,
                failed_statuses=sorted(vocabulary.FAILED_STATUSES),
            )
        )
        interaction_daily = pl.concat(
            marts.interaction_daily(rows, daily.lazy()).collect()
            for rows in _in_chunks(con, "interactions_of_affected_days", CHANNEL_DAY)
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
    yields at least one (maybe empty) chunk, so the marts keep their schema."""
    source = statement(name)
    keys = ", ".join(grain)
    con.execute(
        f"""create or replace temp table chunk_of_group as
        select {keys}, (sum(n) over (order by {keys} rows unbounded preceding) - n) // {MART_CHUNK_ROWS}
            as chunk
        from (select {keys}, count(*) as n from ({source}) group by all)""",
        params,
    )
    (chunks,) = con.sql("select coalesce(max(chunk) + 1, 1)::integer from chunk_of_group").fetchall()[0]
    same_group = " and ".join(f"source.{key} is not distinct from chunk_of_group.{key}" for key in grain)
    for chunk in range(chunks):
        yield (
            con.sql(
                f"""select source.* exclude (day) from ({source}) as source
            semi join chunk_of_group on {same_group} and chunk_of_group.chunk = {chunk}""",
                params=params or None,
            )
            .pl()
            .lazy()
        )


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


def _read_seed(name: str, schema: pl.Schema) -> pl.DataFrame:
    return pl.read_csv(SEEDS_DIR / name, schema=schema)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
