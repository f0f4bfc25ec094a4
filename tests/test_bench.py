"""The benchmark harness runs every section end to end on tiny data and reports every contender honestly.

Protects `make bench` from rotting: `make bench-quick`'s run (the emulator process, the floor, `bird-etl
backfill --only messages`, the dlt baseline when dlt is installed, the rate-limited messages and interactions
modes, the one-day scaling runs, the transforms and the failure-rate report on generated rows) completes;
every contender and every scaling run delivers every generated message; the report reads every generated row;
and the results file carries every section, figure, ratio and target verdict. Speed is never asserted.
"""

import importlib.util
import re
from pathlib import Path

import pytest

from bench.run import QUICK, main

pytestmark = pytest.mark.slow
HAS_DLT = importlib.util.find_spec("dlt") is not None
SECTIONS = (
    "## Targets (issue 8)",
    "## Mode 1: throughput, no rate limit",
    "## Mode 2: the emulator enforcing Bird's 50 GET/s",
    "## Mode 3: interactions, under the same limit",
    "## Scaling: one partition of growing size",
    "## Transforms",
    "## Failure-rate report",
)


def _number(text: str) -> int:
    return int(text.replace(",", "").strip("* "))


def _rows_after(text: str, header_start: str) -> list[list[str]]:
    """The body rows (cells) of the first markdown table whose header row starts with `header_start`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_quick_bench_writes_every_section(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    argv = ["--quick", f"--work-dir={tmp_path}", f"--output={output}"]
    main(argv if HAS_DLT else [*argv, "--no-dlt"])

    text = output.read_text()
    for section in SECTIONS:
        assert section in text
    verdicts = [row[2] for row in _rows_after(text, "| target |")]
    assert verdicts.count("not measured") == (0 if HAS_DLT else 1)  # every target got a figure

    # Mode 1: every contender delivered every generated message, and the ratios are there.
    generated = _number(re.search(r"Emulator .*?: ([\d,]+) messages", text)[1])
    assert generated > 0
    assert f"Every contender delivered all {generated:,} messages: yes." in text
    contenders = [row[0].split()[0] for row in _rows_after(text, "| contender |")]
    assert contenders == ["floor", "bird-etl", *(["dlt"] if HAS_DLT else [])]
    assert re.search(r"bird-etl / floor: \*\*\d+\.\d\dx\*\*", text)
    if HAS_DLT:
        assert re.search(r"bird-etl / dlt: \*\*\d+\.\d\dx\*\*", text)

    # Mode 2 loaded every message under the limit without a 429; mode 3 fetched interactions.
    (budget,) = _rows_after(text, "| days | messages |")
    assert _number(budget[1]) == generated
    assert budget[5] == "0", budget
    (interactions,) = _rows_after(text, "| days | messages of those days |")
    assert _number(interactions[4]) > 0  # GETs
    (policy,) = _rows_after(text, "| messages | eligible |")
    assert 0 < _number(policy[2]) <= _number(policy[0])  # asked for some messages, not more than there are

    # Scaling: one row per size, each delivering every message of its day.
    scaling = _rows_after(text, "| messages in the day |")
    assert len(scaling) == len(QUICK["scaling"])
    assert all(_number(row[0]) == _number(row[1]) > 0 for row in scaling)
    assert "Every scaling run delivered all its messages to the warehouse: yes." in text

    # Transforms over mode 1's lake, and the report over every generated row.
    assert f"Over mode 1's lake: {generated:,} messages" in text
    assert f"Rows read: {QUICK['report_rows']:,} (every generated message)." in text
