"""The access key never leaves the process that sends it; a wrong key fails at once, clearly, writing nothing.

A full `bird-etl backfill` and `report` run with a distinctive key against the emulator; then every byte they
produced is searched for it: stdout and stderr, the Dagster instance (run storage, event logs, run config,
compute logs), every Parquet and DuckDB file, the staging and state directories.
"""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.emulator.server import RunningEmulator, run_emulator
from pipelines.emulator.store import MessageStore
from tests.conftest import EMULATOR_NOW, EMULATOR_SPEC

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-01-13"


@pytest.fixture(scope="module")
def secret_key() -> str:
    return f"sk-live-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def keyed_emulator(secret_key: str) -> Iterator[RunningEmulator]:
    store = MessageStore.generate(EMULATOR_SPEC, now=EMULATOR_NOW)
    with run_emulator(store=store, access_key=secret_key) as running:
        yield running


def _cli(
    data_dir: Path, emulator: RunningEmulator, key: str, *args: str
) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "BIRD_API_URL": emulator.base_url,
        "BIRD_ACCESS_KEY": key,
        "BIRD_WORKSPACE_ID": emulator.workspace_id,
        "BIRD_RATE_LIMIT_PER_S": "500",
    }
    env.pop("DAGSTER_HOME", None)
    command = [sys.executable, "-m", "pipelines.cli", "--data-dir", str(data_dir), *args]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, timeout=240, check=False)


@pytest.mark.slow  # a Dagster backfill and a report in subprocesses: 20-50 s
def test_a_full_run_writes_the_access_key_nowhere(
    keyed_emulator: RunningEmulator, secret_key: str, tmp_path: Path
) -> None:
    backfill = _cli(tmp_path, keyed_emulator, secret_key, "backfill", "--start", DAY, "--end", DAY)
    assert backfill.returncode == 0, backfill.stderr.decode()
    report = _cli(tmp_path, keyed_emulator, secret_key, "report", "--start", DAY, "--end", DAY)
    assert report.returncode == 0, report.stderr.decode()
    needle = secret_key.encode()
    for result in (backfill, report):
        assert needle not in result.stdout and needle not in result.stderr
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    # The search covers what it must: the lake, the warehouse and the Dagster instance's storage.
    assert "data.parquet" in names and "warehouse.duckdb" in names
    assert any(path.suffix == ".db" for path in files)  # Dagster's sqlite run and event-log storage
    leaked = [str(path.relative_to(tmp_path)) for path in files if needle in path.read_bytes()]
    assert leaked == []


@dataclass(frozen=True)
class WrongKeyRun:
    returncode: int
    stderr: str
    served: int  # GETs the emulator answered meanwhile (it counts authorized ones only)
    seconds: float
    data_dir: Path


@pytest.fixture(scope="module")
def wrong_key_run(keyed_emulator: RunningEmulator, tmp_path_factory: pytest.TempPathFactory) -> WrongKeyRun:
    data_dir = tmp_path_factory.mktemp("wrong-key")
    served_before = keyed_emulator.stats.to_dict()["gets_total"]
    started = time.perf_counter()
    result = _cli(data_dir, keyed_emulator, "not-the-key", "backfill", "--start", DAY, "--end", DAY)
    seconds = time.perf_counter() - started
    served = keyed_emulator.stats.to_dict()["gets_total"] - served_before
    return WrongKeyRun(result.returncode, result.stderr.decode(), served, seconds, data_dir)


def test_a_wrong_access_key_fails_at_the_first_request_and_writes_nothing(wrong_key_run: WrongKeyRun) -> None:
    stderr = wrong_key_run.stderr
    assert wrong_key_run.returncode != 0
    assert "401" in stderr and "access key" in stderr.lower()
    assert "Traceback" not in stderr and "not-the-key" not in stderr
    assert "attempts" not in stderr  # refused once: a 401 is not retried ("gave up after N attempts")
    assert wrong_key_run.served == 0
    assert not list(wrong_key_run.data_dir.rglob("*.parquet"))
    assert not (wrong_key_run.data_dir / "warehouse.duckdb").exists()
    print(f"wrong key: exit {wrong_key_run.returncode} after {wrong_key_run.seconds:.1f} s")


def test_a_wrong_access_key_is_one_line_on_stderr(wrong_key_run: WrongKeyRun) -> None:
    lines = [line for line in wrong_key_run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, wrong_key_run.stderr
