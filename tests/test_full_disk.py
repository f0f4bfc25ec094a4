"""A full disk is one clear line and a non-zero exit, before any run starts, and nothing is half-written.

The data directory is a real 3 MiB tmpfs (the tests run as root, as CI does).
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)], check=False
    )
    if mounted.returncode != 0:
        pytest.skip("this machine does not let the tests mount a tmpfs (not root?)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_a_nearly_full_data_directory_is_refused_in_one_line(tiny_disk: Path) -> None:
    env = {**os.environ, "BIRD_ACCESS_KEY": "k", "BIRD_WORKSPACE_ID": "7b0a6a0e-2f7c-4b1e-9a53-2f52c1f0d2aa"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "--data-dir",
            str(tiny_disk),
            "backfill",
            "--start",
            "2026-01-13",
            "--end",
            "2026-01-13",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0
    assert len(lines) == 1 and "free" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert list(tiny_disk.iterdir()) == []
