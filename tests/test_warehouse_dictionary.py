"""The data dictionary is complete and current, and the saved queries run and agree with the marts.

Protects: every relation and column carries a comment (the dictionary is rendered from them); the committed
warehouse/README.md matches a fresh render (`python -m warehouse.dictionary --check`); each saved query is
lower-case, states its grain, binds $start/$end and gives the same numbers as the marts.
"""

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from test_warehouse import DAY, load_varied

from warehouse import dictionary
from warehouse.migrate import apply_migrations
from warehouse.sqlfiles import query
from warehouse.store import Warehouse

SAVED_QUERIES = sorted(dictionary.QUERIES_DIR.glob("*.sql"))


def fresh_dictionary() -> tuple[pl.DataFrame, pl.DataFrame]:
    with duckdb.connect() as con:
        apply_migrations(con)
        return query(con, "dictionary_tables"), query(con, "dictionary_columns")


def test_every_relation_and_column_has_a_comment() -> None:
    tables, columns = fresh_dictionary()
    blank = pl.col("comment").is_null() | (pl.col("comment").str.strip_chars() == "")
    assert tables.filter(blank)["table_name"].to_list() == []
    assert columns.filter(blank).select("table_name", "column_name").rows() == []
    expected = {"messages", "interactions", "channels", "failure_codes", "failure_sources", "load_log"}
    assert expected | {"delivery_daily", "failure_breakdown", "interaction_daily"} <= set(
        tables["table_name"]
    )


def test_the_committed_dictionary_is_current() -> None:
    check = subprocess.run(
        [sys.executable, "-m", "warehouse.dictionary", "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_the_check_fails_on_a_stale_dictionary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "README.md"
    stale.write_text("# an older dictionary\n")
    monkeypatch.setattr(dictionary, "README_PATH", stale)
    assert dictionary.main(["--check"]) == 1
    assert dictionary.main([]) == 0
    assert dictionary.main(["--check"]) == 0
    assert "### `messages`" in stale.read_text()


@pytest.mark.parametrize("path", SAVED_QUERIES, ids=lambda path: path.stem)
def test_saved_queries_are_lower_case_and_state_their_grain(path: Path) -> None:
    text = path.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    assert code == code.lower()
    assert "-- grain: one row per" in text
    assert "$start" in code and "$end" in code


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    warehouse = Warehouse(tmp_path_factory.mktemp("warehouse"))
    load_varied(warehouse)
    return warehouse


def saved(warehouse: Warehouse, name: str, days: int = 2) -> pl.DataFrame:
    sql = (dictionary.QUERIES_DIR / f"{name}.sql").read_text()
    with warehouse.connect_readonly() as con:
        return con.sql(sql, params={"start": DAY, "end": DAY + timedelta(days=days)}).pl()


def mart(warehouse: Warehouse, sql: str) -> pl.DataFrame:
    with warehouse.connect_readonly() as con:
        return con.sql(sql).pl()


def test_failure_rate_by_channel_agrees_with_delivery_daily(loaded: Warehouse) -> None:
    rates = saved(loaded, "failure_rate_by_channel").sort("channel_id")
    daily = mart(
        loaded,
        "select channel_id, sum(n_messages)::bigint as n_messages, sum(n_failed)::bigint as n_failed "
        "from delivery_daily "
        "group by channel_id order by channel_id",
    )
    assert rates.select("channel_id", "n_messages", "n_failed").rows() == daily.rows()
    assert rates["failure_rate"].to_list() == (daily["n_failed"] / daily["n_messages"]).to_list()


def test_top_failures_agrees_with_failure_breakdown(loaded: Warehouse) -> None:
    top = saved(loaded, "top_failures")
    breakdown = mart(
        loaded,
        "select failure_code, sum(n_failed)::bigint as n_failed from failure_breakdown group by failure_code",
    )
    assert dict(top.select("failure_code", "n_failed").rows()) == dict(breakdown.rows())
    assert top["n_failed"].is_sorted(descending=True)
    assert top["share_of_failures"].sum() == pytest.approx(1.0)
    assert not top.filter(pl.col("failure_code") == 16042)["is_known_code"].item()


def test_delivery_latency_covers_final_outgoing_messages(loaded: Warehouse) -> None:
    latency = saved(loaded, "delivery_latency")
    assert (
        latency["n_messages"].sum()
        == mart(loaded, "select count(*) as n from messages where is_final and direction = 'outgoing'").item()
    )
    assert (latency["p50_delivery_seconds"] <= latency["p95_delivery_seconds"]).all()
    assert saved(loaded, "delivery_latency", days=0).is_empty()  # an empty window


def test_the_dictionary_example_queries_run(loaded: Warehouse) -> None:
    examples = re.findall(r"```sql\n(.*?)```", dictionary.render(), flags=re.DOTALL)
    assert len(examples) >= 3
    with loaded.connect_readonly() as con:
        for sql in examples:
            con.execute(sql).fetchall()
