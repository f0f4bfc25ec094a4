"""A real headless Chromium for tests, from Debian's packages (installed on first use, never skipped)."""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


@dataclass(frozen=True)
class Chromium:
    executable: Path

    def run(self, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """Open `page` with a fresh profile under `profile`; stderr carries the page's console messages."""
        command = [str(self.executable), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)

    def console_messages(self, page: Path, profile: Path) -> list[str]:
        """The lines Chromium logged from the page's console (errors, CSP violations, failed loads)."""
        stderr = self.run(page, profile, "--dump-dom").stderr
        return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _install_chromium() -> None:
    """apt-get update once, then install chromium; a failure fails the test run rather than skipping it."""
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "chromium"],
    ):
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        if result.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Chromium:
    """Debian's Chromium, installed under a lock shared by the xdist workers when it is missing."""
    with FileLock(str(tmp_path_factory.getbasetemp().parent / "chromium-install.lock")):
        if shutil.which("chromium") is None:
            _install_chromium()
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not on PATH after installing Debian's chromium package")
    return Chromium(Path(executable))
