"""`python -m bench.run [--quick]`: every figure of issue 8 in one run, written to bench/RESULTS.md.

Each contender runs as its own process, watched for wall time, CPU time and the peak RSS of its whole process
tree; the harness itself never imports the pipeline. In order:
1. mode 1, no rate limit, on one emulator (default 1M messages over 30 days, 50 ms a request): the floor
   (`bench/floor.py`), `bird-etl backfill --only messages` with its request budget lifted, and dlt
   (`bench/dlt_baseline.py`), with the ratios bird-etl/floor and bird-etl/dlt;
2. mode 2, the emulator enforcing Bird's 50 GET/s: `bird-etl backfill --only messages` at a 50 GET/s budget,
   with the share of the budget it used and the 429s it caused;
3. mode 3: `bird-etl backfill --only interactions` over the last days of mode 2, still under the limit:
   interaction GETs/s against the budget, and the requests the eligibility policy saved;
4. scaling: `bird-etl backfill --only messages` of ONE day holding each of `--scaling` messages, each on its
   own emulator and in a new data directory: wall time, peak RSS, the warehouse load per partition;
5. the transforms (flattening and marts) over mode 1's lake, warm and in-process (`bench/inprocess.py`);
6. the failure-rate report over `--report-rows` messages generated straight into a warehouse
   (`bench/synth.py`), warm, in-process and through `bird-etl report`.
Every figure written to the results file was measured in this run; speed is never asserted, targets are
marked met or not met.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import psutil

from bench.results import render

BIRD_RATE_LIMIT_PER_S = 50  # Bird's documented GET limit per workspace
RESULTS = Path(__file__).with_name("RESULTS.md")
ENV_RATE_LIMIT = "BIRD_RATE_LIMIT_PER_S"  # bird-etl's request budget (its default: 40)


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class BenchConfig:
    """The datasets, the emulator's latency and how hard each contender may push."""

    messages: int = 1_000_000
    days: int = 30
    end: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())  # exclusive
    latency_ms: float = 50.0
    floor_concurrency: int = 32
    floor_parts: int = 16
    dlt_resources: int = 4
    backfill_concurrency: int | None = None  # None: bird-etl's own default
    days_per_run: int | None = None  # None: bird-etl's own default (0, automatic)
    unlimited_budget: float = 100_000.0  # bird-etl's BIRD_RATE_LIMIT_PER_S where the emulator enforces none
    budget_days: int | None = None  # mode 2 over the last N days only (None: every day)
    budget_rate: float = 50.0  # bird-etl's BIRD_RATE_LIMIT_PER_S in modes 2 and 3
    interaction_days: int = 1  # mode 3 over the last N days of mode 2
    scaling: tuple[int, ...] = (100_000, 1_000_000, 5_000_000)  # messages in one day; () skips
    report_rows: int = 10_000_000  # 0 skips
    repeat: int = 3  # timed repetitions of the warm, in-process measurements
    rate_limited: bool = True
    dlt: bool = True

    @property
    def first_day(self) -> dt.date:
        return self.end - dt.timedelta(days=self.days)

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def last_days(self, n: int) -> tuple[dt.date, dt.date]:
        return self.end - dt.timedelta(days=min(n, self.days)), self.last_day


# Small enough for CI (under 2 minutes): every section, tiny.
QUICK: dict[str, Any] = {
    "messages": 600,
    "days": 1,
    "latency_ms": 10.0,
    "scaling": (150, 600),
    "report_rows": 20_000,
    "repeat": 1,
}


@dataclass(frozen=True)
class Measured:
    """One process: what it printed, how long it took, and its tree's peak RSS."""

    command: list[str]
    seconds: float
    cpu_seconds: float  # user + system of the whole tree: steadier than wall time on a shared machine
    load_average: float  # the machine's 1-minute load when the process finished
    peak_rss: int
    stdout: str
    requests: int  # GETs the emulator served it (admin calls excluded)
    served_429: int

    def json_line(self) -> dict[str, Any]:
        return orjson.loads(self.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class RunFigures:
    """What a bird-etl data directory's Dagster event log says: metadata sums and step seconds, per asset."""

    metadata: dict[str, dict[str, float]] = field(default_factory=dict)  # asset -> label -> sum
    step_s: dict[str, float] = field(default_factory=dict)  # step key -> seconds summed over runs
    runs: int = 0


@dataclass(frozen=True)
class Outcome:
    """A contender's result: the messages it delivered (counted at its destination) and what it cost."""

    name: str
    messages: int
    measured: Measured
    note: str = ""
    figures: RunFigures = field(default_factory=RunFigures)  # bird-etl only

    @property
    def rate(self) -> float:
        return self.messages / self.measured.seconds if self.measured.seconds else 0.0


@dataclass(frozen=True)
class BudgetRun:
    """Modes 2 and 3: bird-etl against the emulator's enforcement of Bird's GET limit."""

    outcome: Outcome
    first_day: dt.date
    last_day: dt.date
    active_s: float  # first to last GET, sampled
    busiest_second: int

    @property
    def accepted(self) -> int:
        return self.outcome.measured.requests - self.outcome.measured.served_429

    def share(self, seconds: float) -> float:
        return self.accepted / (BIRD_RATE_LIMIT_PER_S * seconds) if seconds else 0.0


@dataclass(frozen=True)
class ScalingRun:
    """One day holding `generated` messages, backfilled alone into a new data directory."""

    outcome: Outcome
    generated: int
    generated_s: float
    emulator_rss: int


@dataclass(frozen=True)
class Timing:
    """A warm, in-process measurement (bench/inprocess.py) and the process that took it."""

    figures: dict[str, Any]
    measured: Measured


@dataclass(frozen=True)
class ReportRun:
    """The failure-rate report over generated rows: the generation, in-process timings and the CLI's."""

    generated: Measured
    rows: int
    first_day: dt.date
    last_day: dt.date
    inprocess: Timing
    cli_s: list[float]
    cli_command: list[str]


@dataclass
class Results:
    """Everything measured in one run, in the order it was measured."""

    config: BenchConfig
    argv: list[str]
    started: dt.datetime
    emulator: dict[str, Any] = field(default_factory=dict)  # messages, generated_s, rss
    mode1: list[Outcome] = field(default_factory=list)
    budget: BudgetRun | None = None
    interactions: BudgetRun | None = None
    scaling: list[ScalingRun] = field(default_factory=list)
    transforms: Timing | None = None
    report: ReportRun | None = None


# -- processes ----------------------------------------------------------------------------------------------


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
            process.wait(timeout=60)
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
    command: list[str], *, log: Path, emulator: Emulator | None = None, env: dict[str, str] | None = None
) -> Measured:
    """Run a process to completion, sampling its tree's RSS every 50 ms; fail on a non-zero exit."""
    before = emulator.stats() if emulator else {"gets_total": 0, "served_429": 0}
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
        tail = "\n".join(log.read_text().strip().splitlines()[-8:])
        raise RuntimeError(f"{shlex.join(command)} exited with {process.returncode} (log {log}):\n{tail}")
    after = emulator.stats() if emulator else before
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
    """CPU seconds of every finished descendant (a running emulator is not one of them yet)."""
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

    The emulator's own busiest-second figure covers its whole life (mode 1 included), so modes 2 and 3 take
    their figures from these samples instead.
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


# -- the Dagster event log of a bird-etl data directory ----------------------------------------------------


def run_figures(data_dir: Path) -> RunFigures:
    """Metadata of the asset materializations (summed per asset and label) and step durations, per step.

    A run over a range of partitions records one materialization per partition, each carrying the whole
    run's metadata: each run's metadata is counted once per asset. Read with sqlite3 rather than through
    Dagster, so the harness stays a plain script.
    """
    event_log = data_dir / "dagster" / "history" / "event_log.db"
    if not event_log.exists():
        return RunFigures()
    with closing(sqlite3.connect(event_log)) as db:
        events = db.execute(
            "select dagster_event_type, step_key, asset_key, run_id, event from event_logs"
            " where dagster_event_type in ('ASSET_MATERIALIZATION', 'STEP_SUCCESS', 'PIPELINE_SUCCESS')"
        ).fetchall()
    metadata: dict[str, Counter[str]] = {}
    step_s: Counter[str] = Counter()
    counted: set[tuple[str, str]] = set()
    runs = 0
    for kind, step_key, asset_key, run_id, event in events:
        if kind == "PIPELINE_SUCCESS":
            runs += 1
            continue
        parsed = orjson.loads(event)
        if kind == "STEP_SUCCESS":
            data = parsed["dagster_event"]["event_specific_data"]
            step_s[step_key] += data["duration_ms"] / 1000
            continue
        asset = "/".join(orjson.loads(asset_key))
        sums = metadata.setdefault(asset, Counter())
        sums["materializations"] += 1
        if (run_id, asset) in counted:
            continue
        counted.add((run_id, asset))
        for entry in _metadata_entries(parsed):
            value = entry.get("entry_data", {}).get("value")
            if isinstance(value, int | float) and not isinstance(value, bool):
                sums[entry["label"]] += value
    return RunFigures({asset: dict(sums) for asset, sums in metadata.items()}, dict(step_s), runs)


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


# -- the contenders ---------------------------------------------------------------------------------------


def _api_and_days(config: BenchConfig, emulator: Emulator) -> list[str]:
    """The arguments the floor and the dlt baseline share: where the API is, as whom, and which days."""
    return [
        f"--url={emulator.base_url}",
        f"--access-key={emulator.access_key}",
        f"--workspace-id={emulator.workspace_id}",
        f"--start={config.first_day}",
        f"--end={config.last_day}",
    ]


def run_floor(config: BenchConfig, emulator: Emulator, work: Path) -> Outcome:
    measured = measure(
        [
            sys.executable,
            "-m",
            "bench.floor",
            *_api_and_days(config, emulator),
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


def bird_etl(
    config: BenchConfig,
    emulator: Emulator,
    data_dir: Path,
    *,
    only: str,
    days: tuple[dt.date, dt.date],
    budget: float,
    log: Path,
) -> tuple[Measured, RunFigures]:
    """`bird-etl backfill --only ONLY` over `days` at a request budget of `budget` GET/s."""
    command = [
        str(Path(sys.executable).with_name("bird-etl")),
        f"--data-dir={data_dir}",
        "backfill",
        f"--only={only}",
        f"--start={days[0]}",
        f"--end={days[1]}",
    ]
    if config.backfill_concurrency is not None:
        command.append(f"--concurrency={config.backfill_concurrency}")
    if config.days_per_run is not None:
        command.append(f"--days-per-run={config.days_per_run}")
    env = {**emulator.env, ENV_RATE_LIMIT: f"{budget:g}"}
    measured = measure(command, emulator=emulator, env=env, log=log)
    return measured, run_figures(data_dir)


def warehouse_messages(data_dir: Path) -> int:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        (loaded,) = connection.execute("select count(*) from messages").fetchone()
    return loaded


def run_bird_etl(config: BenchConfig, emulator: Emulator, work: Path) -> Outcome:
    """Mode 1: messages only (what the floor and dlt fetch), the request budget lifted."""
    data_dir = work / "bird-etl-unlimited"
    measured, figures = bird_etl(
        config,
        emulator,
        data_dir,
        only="messages",
        days=(config.first_day, config.last_day),
        budget=config.unlimited_budget,
        log=work / "bird-etl-unlimited.log",
    )
    note = (
        f"--only messages, {ENV_RATE_LIMIT}={config.unlimited_budget:g};"
        f" {figures.runs} Dagster runs (channels' included)"
    )
    return Outcome(
        "bird-etl backfill (lake + warehouse)", warehouse_messages(data_dir), measured, note, figures
    )


def run_dlt(config: BenchConfig, emulator: Emulator, work: Path) -> Outcome:
    measured = measure(
        [
            sys.executable,
            "-m",
            "bench.dlt_baseline",
            *_api_and_days(config, emulator),
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


def _under_limit(
    config: BenchConfig, emulator: Emulator, work: Path, *, only: str, days: tuple[dt.date, dt.date]
) -> BudgetRun:
    """bird-etl in the rate-limited data directory, the emulator enforcing Bird's limit meanwhile."""
    data_dir = work / "bird-etl-rate-limited"
    emulator.set_faults(rate_limit_per_s=BIRD_RATE_LIMIT_PER_S)
    sampler = BudgetSampler(emulator)
    try:
        measured, figures = bird_etl(
            config,
            emulator,
            data_dir,
            only=only,
            days=days,
            budget=config.budget_rate,
            log=work / f"bird-etl-rate-limited-{only}.log",
        )
    finally:
        sampler.stop()
        emulator.set_faults(rate_limit_per_s=None)
    if only == "messages":
        delivered = warehouse_messages(data_dir)
    else:
        delivered = int(figures.metadata.get("raw_interactions", {}).get("messages", 0))
    outcome = Outcome(f"bird-etl backfill --only {only}", delivered, measured, figures=figures)
    return BudgetRun(outcome, *days, sampler.active_seconds(), sampler.busiest_second())


def run_budget(config: BenchConfig, emulator: Emulator, work: Path) -> BudgetRun:
    """Mode 2: messages under Bird's 50 GET/s."""
    return _under_limit(
        config, emulator, work, only="messages", days=config.last_days(config.budget_days or config.days)
    )


def run_interactions(config: BenchConfig, emulator: Emulator, work: Path) -> BudgetRun:
    """Mode 3: the interactions of the last days mode 2 landed, under Bird's 50 GET/s."""
    budget_first, _ = config.last_days(config.budget_days or config.days)
    first, last = config.last_days(config.interaction_days)
    return _under_limit(config, emulator, work, only="interactions", days=(max(first, budget_first), last))


def run_scaling(config: BenchConfig, work: Path, messages: int) -> ScalingRun:
    """One day holding about `messages` messages, on its own emulator, into a new data directory."""
    day_config = replace(config, messages=messages, days=1)
    with start_emulator(day_config) as emulator:
        data_dir = work / f"bird-etl-one-day-{messages}"
        measured, figures = bird_etl(
            day_config,
            emulator,
            data_dir,
            only="messages",
            days=(day_config.first_day, day_config.last_day),
            budget=config.unlimited_budget,
            log=work / f"bird-etl-one-day-{messages}.log",
        )
        outcome = Outcome(f"one day of {messages:,}", warehouse_messages(data_dir), measured, figures=figures)
        return ScalingRun(outcome, emulator.messages, emulator.generated_s, emulator.rss)


def run_transforms(config: BenchConfig, work: Path, data_dir: Path) -> Timing:
    measured = measure(
        [
            sys.executable,
            "-m",
            "bench.inprocess",
            "transforms",
            f"--data-dir={data_dir}",
            f"--repeat={config.repeat}",
        ],
        log=work / "transforms.log",
    )
    return Timing(measured.json_line(), measured)


def run_report(config: BenchConfig, work: Path) -> ReportRun:
    """Generate `report_rows` messages into a new warehouse, then time the report over all of them."""
    data_dir = work / "report-warehouse"
    generated = measure(
        [
            sys.executable,
            "-m",
            "bench.synth",
            f"--data-dir={data_dir}",
            f"--rows={config.report_rows}",
            f"--days={config.days}",
            f"--end={config.end}",
        ],
        log=work / "synth.log",
    )
    # The report window is the second half of the days; its baseline (the previous window of the same
    # width) is the first half, so the report reads every generated row.
    width = max(1, config.days // 2)
    first, last = config.last_days(width)
    inprocess = measure(
        [
            sys.executable,
            "-m",
            "bench.inprocess",
            "report",
            f"--data-dir={data_dir}",
            f"--start={first}",
            f"--end={last}",
            f"--repeat={config.repeat}",
        ],
        log=work / "report-inprocess.log",
    )
    command = [
        str(Path(sys.executable).with_name("bird-etl")),
        f"--data-dir={data_dir}",
        "report",
        f"--start={first}",
        f"--end={last}",
        "--format=json",
        f"--output={work / 'report.json'}",
    ]
    cli_s = [measure(command, log=work / "report-cli.log").seconds for _ in range(1 + config.repeat)][1:]
    return ReportRun(
        generated,
        generated.json_line()["rows"],
        first,
        last,
        Timing(inprocess.json_line(), inprocess),
        cli_s,
        command,
    )


# -- the run -----------------------------------------------------------------------------------------------


def _say(text: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {text}", flush=True)


def _outcome_line(outcome: Outcome) -> str:
    return (
        f"{outcome.name}: {outcome.messages:,} messages in {outcome.measured.seconds:.1f} s"
        f" = {outcome.rate:,.0f}/s, peak RSS {outcome.measured.peak_rss / 2**20:,.0f} MiB"
    )


def run_all(config: BenchConfig, work: Path, results: Results) -> None:
    _say(f"generating {config.messages:,} messages over {config.days} days ...")
    with start_emulator(config) as emulator:
        results.emulator = {
            "messages": emulator.messages,
            "generated_s": emulator.generated_s,
            "rss": emulator.rss,
        }
        _say(f"emulator ready on {emulator.base_url} ({emulator.messages:,} messages)")
        for contender in (run_floor, run_bird_etl, *([run_dlt] if config.dlt else [])):
            outcome = contender(config, emulator, work)
            _say(_outcome_line(outcome))
            results.mode1.append(outcome)
        if config.rate_limited:
            results.budget = run_budget(config, emulator, work)
            _say("mode 2: " + _outcome_line(results.budget.outcome))
            results.interactions = run_interactions(config, emulator, work)
            _say(
                f"mode 3: {results.interactions.accepted:,} interaction GETs"
                f" in {results.interactions.active_s:.1f} s"
            )
    for messages in config.scaling:
        _say(f"scaling: generating one day of {messages:,} messages ...")
        scaled = run_scaling(config, work, messages)
        _say("scaling: " + _outcome_line(scaled.outcome))
        results.scaling.append(scaled)
    results.transforms = run_transforms(config, work, work / "bird-etl-unlimited")
    _say(f"transforms: {results.transforms.figures['total']['median_s']:.2f} s (median, warm)")
    if config.report_rows:
        _say(f"report: generating {config.report_rows:,} messages into a warehouse ...")
        results.report = run_report(config, work)
        _say(
            f"report: {results.report.inprocess.figures['total']['median_s']:.2f} s in-process (median, warm)"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="every section, tiny (CI, under 2 minutes)")
    parser.add_argument("--messages", type=int, help="mode 1 and 2 dataset (default 1,000,000)")
    parser.add_argument("--days", type=int, help="over this many UTC days (default 30)")
    parser.add_argument("--end", type=dt.date.fromisoformat, help="exclusive UTC date (default today)")
    parser.add_argument("--latency-ms", type=float, help="added to every API GET (default 50)")
    parser.add_argument("--floor-concurrency", type=int)
    parser.add_argument("--dlt-resources", type=int)
    parser.add_argument("--backfill-concurrency", type=int, help="bird-etl backfill --concurrency")
    parser.add_argument("--days-per-run", type=int, help="bird-etl backfill --days-per-run")
    parser.add_argument("--unlimited-budget", type=float, help=f"bird-etl's {ENV_RATE_LIMIT} in mode 1")
    parser.add_argument("--budget-days", type=int, help="mode 2 over the last N days only (default all)")
    parser.add_argument("--interaction-days", type=int, help="mode 3 over the last N days (default 1)")
    parser.add_argument("--scaling", type=_sizes, help="messages in one day, e.g. 100000,1000000,5000000")
    parser.add_argument("--report-rows", type=int, help="messages generated for the report (0 skips)")
    parser.add_argument("--repeat", type=int, help="timed repetitions of the warm measurements")
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
    results = Results(config, argv, dt.datetime.now(dt.UTC))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bird-bench-") as scratch:
        work = args.work_dir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        output = args.output or (work / "RESULTS.md" if args.quick else RESULTS)
        run_all(config, work, results)
        text = render(results)
        output.write_text(text)
        print(text)
        _say(f"written to {output}; the whole run took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
