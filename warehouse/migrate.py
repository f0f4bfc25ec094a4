"""Versioned, idempotent schema migrations: `migrations/NNN_name.sql`, applied once each, in order.

Each file runs in its own transaction together with its row in `schema_migrations`, so a failing
migration leaves neither half a schema nor a ledger entry behind.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouse.sqlfiles import PACKAGE_DIR, run, run_script

MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
_MIGRATION_FILE = re.compile(r"(?P<version>\d{3})_(?P<name>\w+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path


def available_migrations() -> list[Migration]:
    """Every migration file, ordered by version; a malformed or duplicate version is an error."""
    migrations = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name} is not named NNN_name.sql")
        migrations.append(Migration(match["version"], match["name"], path))
    versions = [migration.version for migration in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {MIGRATIONS_DIR}: {versions}")
    return migrations


def apply_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet recorded; returns the versions applied now (empty when up to date)."""
    run(con, "schema_migrations")
    applied = {version for (version,) in con.execute("select version from schema_migrations").fetchall()}
    applied_now = []
    for migration in available_migrations():
        if migration.version in applied:
            continue
        con.execute("begin transaction")
        try:
            run_script(con, migration.path)
            run(con, "record_migration", version=migration.version, name=migration.name)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        applied_now.append(migration.version)
    return applied_now
