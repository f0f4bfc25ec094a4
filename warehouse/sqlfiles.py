"""Run the project's .sql files on DuckDB, binding named parameters statement by statement.

DuckDB binds prepared parameters only in the last statement of a multi-statement string, so a file is split
with DuckDB's own parser and each statement gets exactly the `$name` values it uses.
"""

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

PACKAGE_DIR = Path(__file__).parent
SQL_DIR = PACKAGE_DIR / "sql"


def run_script(con: duckdb.DuckDBPyConnection, path: Path, /, **params: Any) -> duckdb.DuckDBPyConnection:
    """Execute every statement of `path`; the returned connection holds the last statement's result."""
    statements = con.extract_statements(path.read_text())
    if not statements:
        raise ValueError(f"{path} holds no SQL statement")
    missing = set().union(*(statement.named_parameters for statement in statements)) - params.keys()
    if missing:
        raise ValueError(f"{path.name} needs parameters {sorted(missing)}")
    for statement in statements:
        con.execute(statement, {name: params[name] for name in statement.named_parameters})
    return con


def run(con: duckdb.DuckDBPyConnection, name: str, /, **params: Any) -> duckdb.DuckDBPyConnection:
    """Execute the loader statement `warehouse/sql/<name>.sql`."""
    return run_script(con, SQL_DIR / f"{name}.sql", **params)


def statement(name: str) -> str:
    """The text of the single-statement query `warehouse/sql/<name>.sql`, without its final semicolon."""
    return (SQL_DIR / f"{name}.sql").read_text().strip().rstrip(";")


def query(con: duckdb.DuckDBPyConnection, name: str, /, **params: Any) -> pl.DataFrame:
    """Rows of the single-statement query `warehouse/sql/<name>.sql`, as a polars frame."""
    return con.sql(statement(name), params=params or None).pl()
