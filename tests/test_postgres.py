"""Dagster's production instance for real: deploy/dagster.yaml against a PostgreSQL server started here.

Protects: the production instance file loads with PostgreSQL storage from the DAGSTER_PG_* variables and
the run queue, pool and retry settings Dagster actually applies are the documented ones; a real ingest run
of one partition against the emulator is recorded in PostgreSQL (run, tags, both asset materializations,
the blocking check results and the bird_api pool), read back with plain SQL rather than through Dagster.

The server comes from Debian's `postgresql` package: when no PostgreSQL programs are found the fixture
installs them with apt-get (once, under a file lock shared by xdist workers), and a failed install fails
these tests rather than skipping them.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from filelock import FileLock

from pipelines.definitions import defs, ingest_job, refresh_channels_job
from pipelines.emulator.server import RunningEmulator
from pipelines.partitions import archive_key, register_workspaces

DEPLOY_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"
INSTALL_LOCK = Path(tempfile.gettempdir()) / "bird-etl-postgres-install.lock"
DAY = dt.date(2026, 1, 14)
# PostgreSQL refuses to run as root; Debian's package creates this account.
SERVER_ACCOUNT = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    username: str
    password: str
    db_name: str

    def connect(self, db_name: str | None = None) -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.username,
            password=self.password,
            dbname=db_name or self.db_name,
        )


def _run(command: Sequence[str], **kwargs: object) -> None:
    """Run a setup command; on failure, fail with its output (which `check=True` alone would hide)."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")


def _installed_server_bin() -> Path | None:
    """Where pg_ctl and initdb live: on PATH, else Debian's newest /usr/lib/postgresql/<major>/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    majors = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parents[1].name))
    return majors[-1].parent if majors else None


def _server_bin() -> Path:
    with FileLock(INSTALL_LOCK):
        found = _installed_server_bin()
        if found is None:
            apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            _run(["apt-get", "update"], env=apt_env)
            _run(["apt-get", "install", "-y", "--no-install-recommends", "postgresql"], env=apt_env)
            found = _installed_server_bin()
    if found is None:
        pytest.fail("apt-get installed postgresql but no pg_ctl was found")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on 127.0.0.1, password-authenticated, with one empty database.

    It lives in a fresh directory under the system temp dir rather than tmp_path: pytest's base temp dir
    is private to root, and the server must run as an unprivileged account when the tests run as root.
    """
    bin_dir = _server_bin()
    as_server_account = ["runuser", "-u", SERVER_ACCOUNT, "--"] if os.geteuid() == 0 else []
    cluster = Path(tempfile.mkdtemp(prefix="bird-etl-pg-"))
    server = PostgresServer("127.0.0.1", _free_port(), "bird_etl", "s3cret-for-tests", "dagster")
    (cluster / "password").write_text(server.password)
    if as_server_account:
        account = pwd.getpwnam(SERVER_ACCOUNT)
        for path in (cluster, cluster / "password"):
            os.chown(path, account.pw_uid, account.pw_gid)
    data = cluster / "data"
    _run(
        [
            *as_server_account,
            str(bin_dir / "initdb"),
            f"--pgdata={data}",
            f"--username={server.username}",
            f"--pwfile={cluster / 'password'}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        ]
    )
    # Durability off: a test cluster that dies is thrown away anyway.
    options = f"-h {server.host} -p {server.port} -k {cluster} -c fsync=off -c synchronous_commit=off"
    pg_ctl = [*as_server_account, str(bin_dir / "pg_ctl"), f"--pgdata={data}"]
    _run([*pg_ctl, f"--log={cluster / 'server.log'}", "--wait", "-o", options, "start"])
    try:
        admin = server.connect("postgres")
        admin.autocommit = True  # create database refuses to run inside a transaction
        admin.cursor().execute(f"create database {server.db_name}")
        admin.close()
        yield server
    finally:
        subprocess.run([*pg_ctl, "--mode=fast", "--wait", "stop"], capture_output=True, check=False)
        shutil.rmtree(cluster, ignore_errors=True)


@pytest.fixture(scope="module")
def instance(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dg.DagsterInstance]:
    """The instance a production host gets: deploy/dagster.yaml as is, credentials from the environment."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(DEPLOY_DAGSTER_YAML, home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home))
        env.setenv("DAGSTER_PG_HOST", postgres.host)
        env.setenv("DAGSTER_PG_PORT", str(postgres.port))
        env.setenv("DAGSTER_PG_USERNAME", postgres.username)
        env.setenv("DAGSTER_PG_PASSWORD", postgres.password)
        env.setenv("DAGSTER_PG_DB", postgres.db_name)
        with dg.DagsterInstance.from_config(str(home)) as production:
            yield production


def test_production_instance_stores_in_postgres_with_the_documented_limits(
    instance: dg.DagsterInstance,
) -> None:
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    assert queue.max_concurrent_runs == 16
    assert [dict(limit) for limit in queue.tag_concurrency_limits] == [
        {"key": "bird-etl/workspace", "value": {"applyLimitPerUniqueValue": True}, "limit": 4}
    ]
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 8
    assert instance.run_retries_enabled
    assert instance.run_retries_max_retries == 2


def test_an_ingest_run_is_recorded_in_postgres(
    instance: dg.DagsterInstance,
    postgres: PostgresServer,
    emulator_module: RunningEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BIRD_ETL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BIRD_API_URL", emulator_module.base_url)
    monkeypatch.setenv("BIRD_ACCESS_KEY", emulator_module.access_key)
    monkeypatch.setenv("BIRD_WORKSPACE_ID", emulator_module.workspace_id)
    assert defs.resolve_job_def(refresh_channels_job.name).execute_in_process(instance=instance).success
    tags = {"bird-etl/workspace": emulator_module.workspace_id}
    # Only the two assets this test reads back: the job's other assets add minutes of runtime, not coverage.
    register_workspaces(instance, [emulator_module.workspace_id])
    result = defs.resolve_job_def(ingest_job.name).execute_in_process(
        partition_key=archive_key(emulator_module.workspace_id, DAY),
        instance=instance,
        tags=tags,
        asset_selection=[dg.AssetKey("raw_messages"), dg.AssetKey("messages")],
    )
    assert result.success

    with postgres.connect() as connection, connection.cursor() as sql:
        sql.execute("select status from runs where run_id = %s", [result.run_id])
        assert sql.fetchall() == [("SUCCESS",)]
        sql.execute("select key, value from run_tags where run_id = %s", [result.run_id])
        partition = str(archive_key(emulator_module.workspace_id, DAY))
        assert {
            ("bird-etl/workspace", emulator_module.workspace_id),
            ("dagster/partition", partition),
            ("dagster/partition/workspace", emulator_module.workspace_id),
        } <= set(sql.fetchall())
        sql.execute(
            "select asset_key, partition from event_logs"
            " where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION'",
            [result.run_id],
        )
        assert {('["raw_messages"]', partition), ('["messages"]', partition)} <= set(sql.fetchall())
        # Dagster also keeps a PLANNED row per check and partition; the evaluations are what must be there.
        sql.execute(
            "select check_name, execution_status from asset_check_executions"
            " where run_id = %s and asset_key = %s and execution_status in ('SUCCEEDED', 'FAILED')",
            [result.run_id, '["raw_messages"]'],
        )
        evaluations = set(sql.fetchall())
        raw_checks = {"ids_unique", "keys_not_null", "created_at_in_window", "row_count_matches_api"}
        assert {(name, "SUCCEEDED") for name in raw_checks} <= evaluations
        assert not {(name, "FAILED") for name in raw_checks} & evaluations
        # The pool's default limit, materialized as slots when raw_messages first claimed one.
        sql.execute("select count(*) from concurrency_slots where concurrency_key = 'bird_api'")
        assert sql.fetchall() == [(8,)]
    connection.close()
