"""`python -m bench.run [--quick]`: bird-etl against the client-side floor and dlt, in one run (issue 8).

One emulator process serves a generated dataset with a per-request latency. Each contender then runs as its
own process over the same days, watched for wall time and the peak RSS of its whole process tree:
1. mode 1, no rate limit: the floor (`bench/floor.py`), `bird-etl backfill` (lake and warehouse), and dlt
   (`bench/dlt_baseline.py`), with the ratios bird-etl/floor and bird-etl/dlt;
2. mode 2, the emulator enforcing Bird's 50 GET/s: `bird-etl backfill` again, with the share of the budget it
   used and the 429s it caused (from the emulator's /_emulator/stats).
Every figure written to the results file was measured in this run; nothing is asserted about speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import psutil

BIRD_RATE_LIMIT_PER_S = 50  # Bird's documented GET limit per workspace
PAGE_SIZE = 1000
MIB = 1024 * 1024
RESULTS = Path(__file__).with_name("RESULTS.md")
ENV_RATE_LIMIT = "BIRD_RATE_LIMIT_PER_S"  # bird-etl's request budget; empty: its default (40)


@dataclass(frozen=True)
class BenchConfig:
    """The dataset, the emulator's latency and how hard each contender may push."""

    messages: int = 1_000_000
    days: int = 30
    end: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())  # exclusive
    latency_ms: float = 50.0
    floor_concurrency: int = 32
    floor_parts: int = 16
    dlt_resources: int = 4
    backfill_concurrency: int | None = None  # None: bird-etl's own default
    budget_days: int | None = None  # mode 2 over the last N days only (None: every day)
    budget_rate: float = 50.0  # bird-etl's BIRD_RATE_LIMIT_PER_S in mode 2 (mode 1 keeps its default)
    rate_limited: bool = True
    dlt: bool = True

    @property
    def first_day(self) -> dt.date:
        return self.end - dt.timedelta(days=self.days)

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)


# Small enough for CI (under 2 minutes): interactions cost one GET per eligible message at 40 GET/s.
QUICK = {"messages": 2_000, "days": 2, "latency_ms": 10.0}


@dataclass(frozen=True)
class Measured:
    """One contender's process: what it printed, how long it took, and its tree's peak RSS."""

    command: list[str]
    seconds: float
    cpu_seconds: float  # user + system of the whole tree: steadier than wall time on a shared machine
    load_average: float  # the machine's 1-minute load when the contender finished
    peak_rss: int
    stdout: str
    requests: int  # GETs the emulator served it (admin calls excluded)
    served_429: int

    def json_line(self) -> dict[str, Any]:
        return orjson.loads(self.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Outcome:
    """A contender's result as reported: messages it delivered (counted at its destination) and cost."""

    name: str
    messages: int
    measured: Measured
    note: str = ""
    interactions: dict[str, float] = field(default_factory=dict)  # bird-etl only

    @property
    def rate(self) -> float:
        return self.messages / self.measured.seconds


class Emulator:
    """The emulator process (`bench/emulator.py`) and its admin routes."""

    def __init__(self, process: subprocess.Popen[str], ready: dict[str, Any]) -> None:
        self.process = process
        self.base_url: str = ready["base_url"]
        self.access_key: str = ready["access_key"]
        self.workspace_id: str = ready["workspace_id"]
        self.messages: int = ready["messages"]
        self.generated_s: float = ready["generated_s"]
        self._admin = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"AccessKey {self.access_key}"}, timeout=60
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            "BIRD_API_URL": self.base_url,
            "BIRD_ACCESS_KEY": self.access_key,
            "BIRD_WORKSPACE_ID": self.workspace_id,
        }

    @property
    def rss(self) -> int:
        return psutil.Process(self.process.pid).memory_info().rss

    def stats(self) -> dict[str, Any]:
        return self._admin.get("/_emulator/stats").raise_for_status().json()

    def set_faults(self, **changes: Any) -> None:
        self._admin.put("/_emulator/faults", content=orjson.dumps(changes)).raise_for_status()

    def close(self) -> None:
        self._admin.close()


@contextmanager
def start_emulator(config: BenchConfig) -> Iterator[Emulator]:
    """Generate and serve the dataset in a child process; stop it when the block exits."""
    command = [
        sys.executable,
        "-m",
        "bench.emulator",
        f"--messages={config.messages}",
        f"--days={config.days}",
        f"--end={config.end.isoformat()}",
        f"--latency-ms={config.latency_ms}",
    ]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the emulator exited with status {process.wait()} before it was ready")
        emulator = Emulator(process, orjson.loads(line))
        try:
            yield emulator
        finally:
            emulator.close()
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants (shared pages counted once per process)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with suppress(psutil.Error):  # it exited between listing and reading
            total += member.memory_info().rss
    return total


def measure(
    command: list[str], *, emulator: Emulator, env: dict[str, str] | None = None, log: Path
) -> Measured:
    """Run a contender to completion, sampling its process tree's RSS every 50 ms; fail on non-zero exit."""
    before = emulator.stats()
    cpu_before = _children_cpu()
    started = time.perf_counter()
    with log.open("w") as stderr:
        process = psutil.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ, **(env or {})}
        )
        peak = 0
        reader = _Drain(process)
        while process.poll() is None:
            peak = max(peak, tree_rss(process))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        reader.join()
    if process.returncode != 0:
        tail = "\n".join(reader.text.strip().splitlines()[-5:])
        raise RuntimeError(f"{shlex.join(command)} exited with {process.returncode} (log {log}):\n{tail}")
    after = emulator.stats()
    return Measured(
        command=command,
        seconds=seconds,
        cpu_seconds=_children_cpu() - cpu_before,
        load_average=os.getloadavg()[0],
        peak_rss=peak,
        stdout=reader.text,
        requests=after["gets_total"] - before["gets_total"],
        served_429=after["served_429"] - before["served_429"],
    )


def _children_cpu() -> float:
    """CPU seconds of every finished descendant (the running emulator is not one of them yet)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class _Drain(threading.Thread):
    """Reads a child's stdout as it comes, so a chatty child never blocks on a full pipe."""

    def __init__(self, process: psutil.Popen) -> None:
        super().__init__(daemon=True)
        self._process = process
        self.text = ""
        self.start()

    def run(self) -> None:
        self.text = self._process.stdout.read()


class BudgetSampler(threading.Thread):
    """Samples the emulator's GET counter every quarter second while a contender runs under the limit.

    The emulator's own busiest-second figure covers its whole life (mode 1 included), so mode 2 takes its
    figures from these samples instead.
    """

    INTERVAL_S = 0.25

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(daemon=True)
        self._emulator = emulator
        self._done = threading.Event()
        self.samples: list[tuple[float, int]] = [self._sample()]
        self.start()

    def _sample(self) -> tuple[float, int]:
        return time.perf_counter(), self._emulator.stats()["gets_total"]

    def run(self) -> None:
        while not self._done.wait(self.INTERVAL_S):
            self.samples.append(self._sample())

    def stop(self) -> None:
        self._done.set()
        self.join()
        self.samples.append(self._sample())

    def active_seconds(self) -> float:
        """From the sample before the first new GET to the first sample that had seen the last one."""
        first_count, last_count = self.samples[0][1], self.samples[-1][1]
        if last_count == first_count:
            return 0.0
        before = max(i for i, (_, n) in enumerate(self.samples) if n == first_count)
        ended = next(t for t, n in self.samples if n == last_count)
        return ended - self.samples[before][0]

    def busiest_second(self) -> int:
        """Most GETs between two samples one second apart."""
        per_second = round(1 / self.INTERVAL_S)
        counts = [n for _, n in self.samples]
        return max((b - a for a, b in zip(counts, counts[per_second:], strict=False)), default=0)


def run_floor(config: BenchConfig, emulator: Emulator, work: Path) -> Outcome:
    measured = measure(
        [
            sys.executable,
            "-m",
            "bench.floor",
            f"--url={emulator.base_url}",
            f"--access-key={emulator.access_key}",
            f"--workspace-id={emulator.workspace_id}",
            f"--start={config.first_day}",
            f"--end={config.last_day}",
            f"--parts={config.floor_parts}",
            f"--concurrency={config.floor_concurrency}",
        ],
        emulator=emulator,
        log=work / "floor.log",
    )
    return Outcome(
        "floor (httpx + orjson, nothing stored)",
        measured.json_line()["messages"],
        measured,
        f"{config.floor_concurrency} requests in flight, {config.floor_parts} windows a day",
    )


def run_bird_etl(
    config: BenchConfig, emulator: Emulator, work: Path, label: str = "unlimited", budget: float | None = None
) -> Outcome:
    """`bird-etl backfill` at its default request budget, or at `budget` GET/s."""
    data_dir = work / f"bird-etl-{label}"
    command = [
        str(Path(sys.executable).with_name("bird-etl")),
        f"--data-dir={data_dir}",
        "backfill",
        f"--start={config.first_day}",
        f"--end={config.last_day}",
    ]
    if config.backfill_concurrency is not None:
        command.append(f"--concurrency={config.backfill_concurrency}")
    env = {**emulator.env, ENV_RATE_LIMIT: "" if budget is None else f"{budget:g}"}
    measured = measure(command, emulator=emulator, env=env, log=work / f"bird-etl-{label}.log")
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        (loaded,) = connection.execute("select count(*) from messages").fetchone()
    figures = interaction_figures(data_dir)
    note = "" if not figures else f"includes {int(figures['messages_asked']):,} interaction GETs"
    return Outcome("bird-etl backfill (lake + warehouse)", loaded, measured, note, figures)


INTERACTION_FIGURES = ("messages", "eligible_messages", "messages_asked", "requests", "requests_naive")


def interaction_figures(data_dir: Path) -> dict[str, float]:
    """Sums of the raw_interactions materializations' metadata, read from the run's Dagster event log.

    Read with sqlite3 rather than through Dagster, so the harness stays a plain script; empty when the
    pipeline materialized no raw_interactions.
    """
    event_log = data_dir / "dagster" / "history" / "event_log.db"
    if not event_log.exists():
        return {}
    with closing(sqlite3.connect(event_log)) as db:
        events = db.execute(
            "select event from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'"
            " and step_key = 'raw_interactions'"
        ).fetchall()
    totals = dict.fromkeys((*INTERACTION_FIGURES, "duration_s"), 0.0)
    for (event,) in events:
        for entry in _metadata_entries(orjson.loads(event)):
            if entry.get("label") in totals:
                totals[entry["label"]] += entry["entry_data"]["value"]
    return totals if events else {}


def _metadata_entries(node: Any) -> Iterator[dict[str, Any]]:
    """Every serialized metadata entry, wherever Dagster nests it in an event."""
    if isinstance(node, dict):
        if node.get("__class__") == "EventMetadataEntry":
            yield node
        for value in node.values():
            yield from _metadata_entries(value)
    elif isinstance(node, list):
        for value in node:
            yield from _metadata_entries(value)


def run_dlt(config: BenchConfig, emulator: Emulator, work: Path) -> Outcome:
    measured = measure(
        [
            sys.executable,
            "-m",
            "bench.dlt_baseline",
            f"--url={emulator.base_url}",
            f"--access-key={emulator.access_key}",
            f"--workspace-id={emulator.workspace_id}",
            f"--start={config.first_day}",
            f"--end={config.last_day}",
            f"--resources={config.dlt_resources}",
            f"--work-dir={work / 'dlt'}",
        ],
        emulator=emulator,
        log=work / "dlt.log",
    )
    phases = measured.json_line()
    note = (
        f"{config.dlt_resources} parallelized resources; extract {phases['extract_s']:.1f} s, "
        f"normalize {phases['normalize_s']:.1f} s, load {phases['load_s']:.1f} s"
    )
    return Outcome(
        "dlt (RESTClient, cursor paginator, Parquet, merge on id)", phases["messages"], measured, note
    )


@dataclass(frozen=True)
class BudgetRun:
    """Mode 2: bird-etl against the emulator's enforcement of Bird's GET limit."""

    outcome: Outcome
    days: int
    active_s: float
    busiest_second: int

    @property
    def accepted(self) -> int:
        return self.outcome.measured.requests - self.outcome.measured.served_429

    def share(self, seconds: float) -> float:
        return self.accepted / (BIRD_RATE_LIMIT_PER_S * seconds) if seconds else 0.0


def run_budget(config: BenchConfig, emulator: Emulator, work: Path) -> BudgetRun:
    emulator.set_faults(rate_limit_per_s=BIRD_RATE_LIMIT_PER_S)
    sampler = BudgetSampler(emulator)
    try:
        days = config.budget_days or config.days
        outcome = run_bird_etl(
            replace(config, days=days), emulator, work, "rate-limited", budget=config.budget_rate
        )
    finally:
        sampler.stop()
        emulator.set_faults(rate_limit_per_s=None)
    return BudgetRun(outcome, days, sampler.active_seconds(), sampler.busiest_second())


# -- the report ---------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    packages = ("dagster", "polars", "duckdb", "pyarrow", "httpx", "orjson", "uvicorn", "dlt")
    return {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} logical",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": ", ".join(f"{name} {version(name)}" for name in packages),
    }


def _mib(n: int) -> str:
    return f"{n / MIB:,.0f}"


def _row(outcome: Outcome) -> str:
    m = outcome.measured
    cells = [outcome.name, f"{outcome.messages:,}", f"{m.seconds:.1f}", f"{outcome.rate:,.0f}"]
    cells += [
        f"{m.cpu_seconds:.1f}",
        _mib(m.peak_rss),
        f"{m.requests:,}",
        f"{m.load_average:.1f}",
        outcome.note,
    ]
    return "| " + " | ".join(cells) + " |"


def interaction_lines(mode1: list[Outcome], budget: BudgetRun | None) -> list[str]:
    """Requests of the raw_interactions step in each bird-etl run, and what the eligibility policy saved."""
    runs = [(o, "mode 1 (no limit)") for o in mode1 if o.interactions]
    if budget and budget.outcome.interactions:
        runs.append((budget.outcome, f"mode 2 ({BIRD_RATE_LIMIT_PER_S} GET/s enforced)"))
    if not runs:
        return ["Not measured: no raw_interactions materialization was found in the bird-etl runs."]
    lines = [
        "From the metadata of every `raw_interactions` materialization of the run (summed over days).",
        "",
        "| run | messages | eligible | asked (GETs) | naive GETs (one per message) | saved by the policy"
        " | GETs/s while fetching interactions |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for outcome, label in runs:
        f = outcome.interactions
        saved = 1 - f["requests"] / f["requests_naive"] if f["requests_naive"] else 0.0
        cells = [label, f"{f['messages']:,.0f}", f"{f['eligible_messages']:,.0f}"]
        cells += [f"{f['messages_asked']:,.0f}", f"{f['requests_naive']:,.0f}", f"{saved:.0%}"]
        cells.append(f"{f['requests'] / f['duration_s']:.1f}" if f["duration_s"] else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "- GETs/s while fetching = the step's requests / the step's own duration, summed over days; with two"
        " days in flight at once the budget is shared, so the per-step rate understates the combined one.",
    ]
    return lines


def report(
    config: BenchConfig,
    emulator: Emulator,
    started: dt.datetime,
    argv: list[str],
    mode1: list[Outcome],
    budget: BudgetRun | None,
) -> str:
    lines = [
        "# bird-etl benchmark results",
        "",
        f"Written by `python -m bench.run {' '.join(argv)}` at {started:%Y-%m-%d %H:%M} UTC. Every figure"
        " below was measured in that one run; nothing here is a target or an estimate.",
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in machine().items()),
        "",
        "## Setup",
        "",
        f"- Emulator (own process, uvicorn, clock pinned): {emulator.messages:,} messages over {config.days}"
        f" UTC days {config.first_day} .. {config.last_day}, generated in {emulator.generated_s:.0f} s (not"
        f" timed), {config.latency_ms:g} ms added to every API GET; emulator RSS {_mib(emulator.rss)} MiB.",
        "- Each contender runs as its own process; wall time is its whole process, start to exit (imports"
        " and Dagster start-up included); peak RSS is the sum over its process tree, sampled every 50 ms;"
        ' CPU s is the user + system time of that tree. "Load after" is the machine\'s 1-minute load'
        " average when it finished: the machine is shared, and a load above the core count slows every"
        " figure here, which CPU s shows less than wall time.",
        "- Messages are counted at the destination: rows in the warehouse's `messages` table (bird-etl),"
        " in dlt's `messages` table (dlt), messages parsed (floor). Requests: GETs the emulator served.",
        "",
        "## Mode 1: throughput, no rate limit",
        "",
        "| contender | messages | wall s | messages/s | CPU s | peak RSS MiB | requests | load after"
        " | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        *(_row(outcome) for outcome in mode1),
        "",
    ]
    by_name = {outcome.name.split()[0]: outcome for outcome in mode1}
    bird = by_name["bird-etl"]
    lines.append(f"- bird-etl / floor: **{bird.rate / by_name['floor'].rate:.2f}x** (messages/s)")
    if "dlt" in by_name:
        lines.append(f"- bird-etl / dlt: **{bird.rate / by_name['dlt'].rate:.2f}x** (messages/s)")
    else:
        lines.append("- bird-etl / dlt: not measured (run with dlt skipped)")
    per_1k = ", ".join(
        f"{o.name.split()[0]} {1000 * o.measured.cpu_seconds / o.messages:.1f} ms"
        for o in mode1
        if o.messages
    )
    lines.append(f"- CPU per 1,000 messages: {per_1k}.")
    complete = all(outcome.messages == emulator.messages for outcome in mode1)
    lines += [
        f"- Every contender delivered all {emulator.messages:,} messages: {'yes' if complete else 'NO'}.",
        "- bird-etl runs at its default request budget of 40 GET/s (`BIRD_RATE_LIMIT_PER_S` unset), so at"
        " 1,000 messages a page its ceiling is 40,000 messages/s whatever the emulator allows; the floor and"
        " dlt have no budget. `bird-etl backfill` also fetches interactions (one GET per eligible message),"
        " which the floor and dlt do not: compare the requests column.",
        "",
        f"## Mode 2: the emulator enforcing Bird's {BIRD_RATE_LIMIT_PER_S} GET/s",
        "",
    ]
    if budget is None:
        lines += ["Not run (`--no-rate-limit`).", ""]
    else:
        m = budget.outcome.measured
        lines += [
            f"`bird-etl backfill` over the last {budget.days} of the {config.days} days, new data directory.",
            "",
            "| messages | wall s | messages/s | peak RSS MiB | GETs | 429s caused | budget used over wall"
            " | budget used while requesting | busiest second (sampled) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            "| "
            + " | ".join(
                [
                    f"{budget.outcome.messages:,}",
                    f"{m.seconds:.1f}",
                    f"{budget.outcome.rate:,.0f}",
                    _mib(m.peak_rss),
                    f"{m.requests:,}",
                    f"{m.served_429:,}",
                    f"{budget.share(m.seconds):.0%}",
                    f"{budget.share(budget.active_s):.0%} ({budget.active_s:.1f} s)",
                    f"{budget.busiest_second} GETs",
                ]
            )
            + " |",
            "",
            '- Budget used = accepted GETs / (50 x seconds). "While requesting" spans the first to the last'
            ' GET (sampled every 0.25 s); "wall" adds start-up, the last warehouse load and exit.',
            f"- bird-etl's budget set to {config.budget_rate:g} GET/s (`{ENV_RATE_LIMIT}`) for this mode.",
            "",
        ]
    lines += [
        "## Mode 3: interactions",
        "",
        *interaction_lines(mode1, budget),
        "",
        "## Commands",
        "",
        "```",
        *(_portable(outcome.measured.command) for outcome in mode1),
        *([_portable(budget.outcome.measured.command)] if budget else []),
        "```",
        "",
        "(`BIRD_API_URL`, `BIRD_ACCESS_KEY`, `BIRD_WORKSPACE_ID` point bird-etl at the emulator.)",
        "",
        "Profiles of the hot paths, measured separately: `bench/PROFILE.md`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2k messages over 2 days at 10 ms (CI)")
    parser.add_argument("--messages", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--end", type=dt.date.fromisoformat, help="exclusive UTC date (default today)")
    parser.add_argument("--latency-ms", type=float)
    parser.add_argument("--floor-concurrency", type=int)
    parser.add_argument("--dlt-resources", type=int)
    parser.add_argument("--backfill-concurrency", type=int, help="bird-etl backfill --concurrency")
    parser.add_argument("--budget-days", type=int, help="mode 2 over the last N days only")
    parser.add_argument("--no-dlt", dest="dlt", action="store_false", default=None)
    parser.add_argument("--no-rate-limit", dest="rate_limited", action="store_false", default=None)
    parser.add_argument("--work-dir", type=Path, help="where data goes (default: a temporary directory)")
    parser.add_argument(
        "--output", type=Path, help="results file (default bench/RESULTS.md; --quick: work dir)"
    )
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    options = {k: v for k, v in vars(args).items() if k in BenchConfig.__dataclass_fields__ and v is not None}
    config = BenchConfig(**{**(QUICK if args.quick else {}), **options})
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="bird-bench-") as scratch:
        work = args.work_dir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        output = args.output or (work / "RESULTS.md" if args.quick else RESULTS)
        print(f"generating {config.messages:,} messages over {config.days} days ...", flush=True)
        with start_emulator(config) as emulator:
            print(f"emulator ready on {emulator.base_url} ({emulator.messages:,} messages)", flush=True)
            mode1 = []
            for run in (run_floor, run_bird_etl, *([run_dlt] if config.dlt else [])):
                outcome = run(config, emulator, work)
                print(
                    f"{outcome.name}: {outcome.messages:,} messages in {outcome.measured.seconds:.1f} s"
                    f" = {outcome.rate:,.0f}/s, peak RSS {_mib(outcome.measured.peak_rss)} MiB",
                    flush=True,
                )
                mode1.append(outcome)
            budget = run_budget(config, emulator, work) if config.rate_limited else None
            text = report(config, emulator, started, argv, mode1, budget)
        output.write_text(text)
        print(text)
        print(f"written to {output}")


if __name__ == "__main__":
    main()


def _portable(command: list[str]) -> str:
    """A command as the reader would type it: paths inside the checkout made relative to it."""
    root = str(Path.cwd()) + "/"
    return shlex.join(part.replace(root, "") for part in command)
