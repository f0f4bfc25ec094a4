"""An analyst's open session never makes a load fail, and a load never shows anyone half a partition.

One process holds `warehouse.duckdb` open (read-only, or read-write as the DuckDB CLI does by default) and
queries it in a loop; another opens new sessions one after another; meanwhile this process replaces the same
partition several times. Every load must succeed; the held session keeps its consistent snapshot; every new
session sees one whole load, with marts that agree with its messages.
"""

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from test_warehouse import DAY, NEXT_DAY, WORKSPACE, failed, message, messages_frame

from warehouse.store import Warehouse

ROWS_PER_LOAD = 60
LOADS = 4

# The analyst's session: opened before the loads and held, queried until told to stop.
HOLDER = """
import json, sys, time
from pathlib import Path
import duckdb

path, mode, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
held = duckdb.connect(path, read_only=(mode == "read_only"))
if mode == "read_write":
    held.execute("create table analyst_scratch as select 42 as answer")
counts, iterations = {held.execute("select count(*) from messages").fetchall()[0][0]}, 0
print(json.dumps({"ready": True}), flush=True)
while not stop.exists():
    iterations += 1
    counts.add(held.execute("select count(*) from messages").fetchall()[0][0])
    time.sleep(0.01)
held.close()
print(json.dumps({"iterations": iterations, "counts": sorted(counts)}), flush=True)
"""

# New sessions, one after another, each checking that it sees one whole load with marts that agree.
# Prints one JSON line per new version seen (the first included), then a summary.
CHECKER = """
import json, sys, time
from pathlib import Path
from warehouse.store import Warehouse

warehouse, stop, rows_per_load = Warehouse(Path(sys.argv[1])), Path(sys.argv[2]), int(sys.argv[3])
SNAPSHOT = (
    "select (select count(*) from messages), (select count(distinct reference) from messages), "
    "(select max(reference) from messages), (select count(*) filter (status = 'delivered') from messages), "
    "(select coalesce(sum(n_messages), 0)::bigint from delivery_daily), "
    "(select coalesce(sum(n_delivered), 0)::bigint from delivery_daily)"
)
problems, seen, iterations = [], -1, 0
while not stop.exists():
    iterations += 1
    with warehouse.connect_readonly() as fresh:
        snapshot = fresh.execute(SNAPSHOT).fetchall()[0]
    n, n_versions, reference, n_delivered, mart_messages, mart_delivered = snapshot
    one_whole_load = (n, n_versions) in {(0, 0), (rows_per_load, 1)}
    if not one_whole_load or (mart_messages, mart_delivered) != (n, n_delivered):
        problems.append(snapshot)
    version = int(reference.removeprefix("v")) if reference else 0
    if version > seen:
        seen = version
        print(json.dumps({"seen": version}), flush=True)
    time.sleep(0.01)
print(json.dumps({"iterations": iterations, "problems": problems}), flush=True)
"""


def start(script: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True
    )


def next_message(process: subprocess.Popen[str]) -> dict:
    assert process.stdout is not None
    return json.loads(process.stdout.readline())


def version(number: int) -> pl.DataFrame:
    """The whole partition as load `number` writes it: every row tagged with the version, statuses varied."""
    rows = []
    for n in range(ROWS_PER_LOAD):
        common = {
            "created_at": DAY + timedelta(minutes=11 * n),
            "updated_at": DAY + timedelta(hours=number, minutes=11 * n),
            "reference": f"v{number}",
        }
        if (n + number) % 3:
            rows.append(message(f"m{n}", **common))
        else:
            rows.append(failed(f"m{n}", 15005, **common))
    return messages_frame(*rows)


@pytest.mark.parametrize("mode", ["read_only", "read_write"])
def test_loads_succeed_while_other_processes_read(tmp_path: Path, mode: str) -> None:
    warehouse = Warehouse(tmp_path)
    warehouse.migrate()
    stop = tmp_path / "stop"
    holder = start(HOLDER, warehouse.path, mode, stop)
    processes = [holder]
    try:
        assert next_message(holder) == {"ready": True}
        for number in range(1, LOADS + 1):
            result = warehouse.load_messages(
                workspace_id=WORKSPACE, start=DAY, end=NEXT_DAY, messages=version(number)
            )
            assert result.n_rows == ROWS_PER_LOAD
            if number == 1:
                # Only now: a read-write session locks the snapshot it opened against every other session.
                checker = start(CHECKER, tmp_path, stop, ROWS_PER_LOAD)
                processes.append(checker)
            # Wait until a new session has seen this load, so that the next load overlaps its queries.
            assert next_message(checker) == {"seen": number}
    finally:
        stop.touch()
        summaries = [next_message(process) for process in processes]
        for process in processes:
            process.wait()
    held, checked = summaries
    assert [process.returncode for process in processes] == [0, 0]
    assert checked["problems"] == []
    assert held["counts"] == [0]  # the held session keeps reading the snapshot it opened
    with warehouse.connect_readonly() as con:
        assert con.execute("select count(*), max(reference) from messages").fetchall() == [
            (ROWS_PER_LOAD, f"v{LOADS}")
        ]
        tables = {name for (name,) in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert "analyst_scratch" not in tables  # what an analyst writes to the snapshot is not kept
