"""The benchmark harness runs end to end on a small dataset and reports every contender honestly.

Protects `make bench` from rotting: the emulator process, the floor, `bird-etl backfill`, the dlt baseline
(when dlt is installed) and the rate-limited mode all run, each delivers every generated message, and the
results file carries the figures and ratios. Speed is never asserted.
"""

import importlib.util
import re
from pathlib import Path

import pytest

from bench.run import main

pytestmark = pytest.mark.slow
HAS_DLT = importlib.util.find_spec("dlt") is not None


def test_quick_bench_writes_complete_results(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    argv = ["--quick", "--messages=1500", "--days=1", f"--work-dir={tmp_path}", f"--output={output}"]
    main(argv if HAS_DLT else [*argv, "--no-dlt"])

    text = output.read_text()
    generated = int(re.search(r"Emulator .*?: ([\d,]+) messages", text)[1].replace(",", ""))
    assert generated > 0
    assert f"Every contender delivered all {generated:,} messages: yes." in text
    assert re.search(r"bird-etl / floor: \*\*\d+\.\d\dx\*\*", text)
    if HAS_DLT:
        assert re.search(r"bird-etl / dlt: \*\*\d+\.\d\dx\*\*", text)
    budget_row = next(line for line in text.splitlines() if line.startswith(f"| {generated:,} |"))
    caused_429 = budget_row.split("|")[6].strip()
    assert caused_429 == "0", budget_row
