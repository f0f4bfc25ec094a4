"""Puts the figures a reliability test run measured into `docs/reliability.md` (opt-in, never by default).

`BIRD_ETL_WRITE_RELIABILITY=1 .venv/bin/pytest tests/test_fault_matrix.py tests/test_crash_loop.py` rewrites
the sections between `<!-- {name}:start -->` and `<!-- {name}:end -->`; the prose around them is kept.
"""

import datetime as dt
import os
import platform
from collections.abc import Sequence
from pathlib import Path

ENV_WRITE = "BIRD_ETL_WRITE_RELIABILITY"
DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def publish_section(name: str, body: str) -> bool:
    """Replace section `name` of the document with `body` and a line saying when and where it was measured.

    Does nothing (returns False) unless BIRD_ETL_WRITE_RELIABILITY=1.
    """
    if os.environ.get(ENV_WRITE) != "1":
        return False
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = DOC.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{DOC} has no {start} ... {end} section")
    measured = (
        f"_Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}._"
    )
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(f"{head}{start}\n{measured}\n\n{body}\n{end}{tail}")
    return True
