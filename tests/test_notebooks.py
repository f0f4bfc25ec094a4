"""The analyst notebooks run top to bottom as scripts against a warehouse built by the real pipeline, read it
without changing it, and keep no outputs (marimo notebooks are plain Python files)."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.demo_warehouse"]

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.py"))


def test_there_are_the_three_analyst_notebooks() -> None:
    assert [path.stem for path in NOTEBOOKS] == [
        "channel_country",
        "delivery_funnel",
        "failure_investigation",
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom_read_only(notebook: Path, demo_data_dir: Path) -> None:
    warehouse = demo_data_dir / "warehouse.duckdb"
    before = hashlib.sha256(warehouse.read_bytes()).hexdigest()
    result = subprocess.run(
        [sys.executable, str(notebook)],
        capture_output=True,
        text=True,
        env={**os.environ, "BIRD_ETL_DATA_DIR": str(demo_data_dir)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert hashlib.sha256(warehouse.read_bytes()).hexdigest() == before
    assert not (notebook.parent / "__marimo__").exists()
