"""The results file of `python -m bench.run`: every figure measured in one run, targets marked."""

from __future__ import annotations

import os
import platform
import shlex
import statistics
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from bench.run import BudgetRun, Outcome, Results

MIB = 2**20
GIB = 2**30
BIRD_LIMIT = 50  # GET/s, Bird's documented limit per workspace
# The targets of issue 8.
TARGET_RATE = 50_000  # messages/s end to end
TARGET_FLOOR_RATIO = 0.7
TARGET_DLT_RATIO = 16.0
TARGET_BUDGET_SHARE = 0.90
TARGET_RSS_SPREAD = 0.20
TARGET_RSS = GIB
TARGET_TRANSFORMS_S = 5.0
TARGET_REPORT_S = 1.0
FULL_SIZES = {"messages": 1_000_000, "report_rows": 10_000_000, "largest scaling size": 5_000_000}


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool | None  # None: not measured in this run


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    packages = []
    for name in ("dagster", "polars", "duckdb", "pyarrow", "httpx", "orjson", "msgspec", "uvicorn", "dlt"):
        try:
            packages.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            packages.append(f"{name} (not installed)")
    return {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} logical",
        "memory": f"{psutil.virtual_memory().total / GIB:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": ", ".join(packages),
    }


def _mib(n: float) -> str:
    return f"{n / MIB:,.0f}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[met]


def _table(headers: list[str], rows: list[list[str]], align: str) -> list[str]:
    """A markdown table; `align` holds one character a column: l(eft) or r(ight)."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(rule) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _portable(command: list[str]) -> str:
    """A command as the reader would type it: paths inside the checkout made relative to it."""
    root = str(Path.cwd()) + "/"
    return shlex.join(part.replace(root, "") for part in command)


def _by_name(results: Results) -> dict[str, Outcome]:
    return {outcome.name.split()[0]: outcome for outcome in results.mode1}


def _ratio(results: Results, other: str) -> float | None:
    by_name = _by_name(results)
    if "bird-etl" not in by_name or other not in by_name or not by_name[other].rate:
        return None
    return by_name["bird-etl"].rate / by_name[other].rate


# The step that lands the days (raw_messages) and loads each into the warehouse (messages) as it lands.
ARCHIVE_STEP = "archived_messages"


def _step_seconds(outcome: Outcome) -> float:
    """Seconds in the pipeline's own step (landing, with the warehouse loads overlapping it), over runs."""
    return outcome.figures.step_s.get(ARCHIVE_STEP, 0.0)


def _load_seconds(outcome: Outcome) -> float:
    """Seconds the warehouse loads took (the `messages` asset's `load_s`), summed over runs."""
    return outcome.figures.metadata.get("messages", {}).get("load_s", 0.0)


def _load_per_partition(outcome: Outcome) -> tuple[float, float] | None:
    """(seconds, rows) of the warehouse load per partition: the loads' seconds over their partitions."""
    partitions = outcome.figures.metadata.get("messages", {}).get("partitions", 0)
    if not partitions:
        return None
    rows = outcome.figures.metadata["messages"].get("rows", 0)
    return _load_seconds(outcome) / partitions, rows / partitions


def targets(results: Results) -> list[Target]:
    found: list[Target] = []
    bird = _by_name(results).get("bird-etl")
    found.append(
        Target(
            f"bird-etl end to end (mode 1) ≥ {TARGET_RATE:,} messages/s",
            f"{bird.rate:,.0f} messages/s" if bird else "-",
            bird.rate >= TARGET_RATE if bird else None,
        )
    )
    for other, wanted in (("floor", TARGET_FLOOR_RATIO), ("dlt", TARGET_DLT_RATIO)):
        ratio = _ratio(results, other)
        found.append(
            Target(
                f"bird-etl / {other} ≥ {wanted:g}x",
                "-" if ratio is None else f"{ratio:.2f}x",
                None if ratio is None else ratio >= wanted,
            )
        )
    budget = results.budget
    found.append(
        Target(
            f"mode 2: ≥ {TARGET_BUDGET_SHARE:.0%} of the {BIRD_LIMIT} GET/s budget used (first to last GET)",
            f"{budget.share(budget.active_s):.0%}" if budget else "-",
            budget.share(budget.active_s) >= TARGET_BUDGET_SHARE if budget else None,
        )
    )
    limited = [run for run in (results.budget, results.interactions) if run]
    caused = sum(run.outcome.measured.served_429 for run in limited)
    found.append(
        Target(
            "modes 2 and 3: 0 429s caused",
            f"{caused:,}" if limited else "-",
            caused == 0 if limited else None,
        )
    )
    scaling = results.scaling
    if len(scaling) >= 2:
        smallest, largest = scaling[0], scaling[-1]
        spread = largest.outcome.measured.peak_rss / smallest.outcome.measured.peak_rss - 1
        found.append(
            Target(
                f"peak RSS flat (within {TARGET_RSS_SPREAD:.0%}) from {smallest.generated:,} to"
                f" {largest.generated:,} messages a partition",
                f"{spread:+.0%}",
                abs(spread) <= TARGET_RSS_SPREAD,
            )
        )
    else:
        found.append(Target(f"peak RSS flat (within {TARGET_RSS_SPREAD:.0%}) across sizes", "-", None))
    peak = max((run.outcome.measured.peak_rss for run in scaling), default=None)
    found.append(
        Target(
            "peak RSS ≤ 1 GiB (every scaling size)",
            "-" if peak is None else f"{_mib(peak)} MiB",
            None if peak is None else peak <= TARGET_RSS,
        )
    )
    transforms = results.transforms
    if transforms:
        seconds = transforms.figures["total"]["median_s"]
        found.append(
            Target(
                f"transforms ≤ {TARGET_TRANSFORMS_S:g} s"
                f" (here on {transforms.figures['messages']:,} messages)",
                f"{seconds:.2f} s",
                seconds <= TARGET_TRANSFORMS_S,
            )
        )
    else:
        found.append(Target(f"transforms ≤ {TARGET_TRANSFORMS_S:g} s", "-", None))
    report = results.report
    if report:
        seconds = report.inprocess.figures["total"]["median_s"]
        found.append(
            Target(
                f"failure-rate report ≤ {TARGET_REPORT_S:g} s warm, in-process (here on {report.rows:,}"
                " messages)",
                f"{seconds:.2f} s",
                seconds <= TARGET_REPORT_S,
            )
        )
    else:
        found.append(Target(f"failure-rate report ≤ {TARGET_REPORT_S:g} s warm", "-", None))
    return found


def _smaller_than_targets(results: Results) -> list[str]:
    config = results.config
    measured = {
        "messages": config.messages,
        "report_rows": config.report_rows,
        "largest scaling size": max(config.scaling, default=0),
    }
    return [
        f"{name} {measured[name]:,} (targets: {full:,})"
        for name, full in FULL_SIZES.items()
        if measured[name] < full
    ]


def mode1_lines(results: Results) -> list[str]:
    config = results.config
    rows = []
    for outcome in results.mode1:
        m = outcome.measured
        rows.append(
            [
                outcome.name,
                f"{outcome.messages:,}",
                f"{m.seconds:.1f}",
                f"{outcome.rate:,.0f}",
                f"{m.cpu_seconds:.1f}",
                f"{1e6 * m.cpu_seconds / outcome.messages:.1f}" if outcome.messages else "-",
                _mib(m.peak_rss),
                f"{m.requests:,}",
                f"{m.load_average:.1f}",
                outcome.note,
            ]
        )
    lines = _table(
        [
            "contender",
            "messages",
            "wall s",
            "messages/s",
            "CPU s",
            "CPU ms per 1,000 messages",
            "peak RSS MiB",
            "requests",
            "load after",
            "notes",
        ],
        rows,
        "lrrrrrrrrl",
    )
    lines.append("")
    for other, wanted in (("floor", TARGET_FLOOR_RATIO), ("dlt", TARGET_DLT_RATIO)):
        ratio = _ratio(results, other)
        if ratio is None:
            lines.append(f"- bird-etl / {other}: not measured")
        else:
            verdict = _verdict(ratio >= wanted)
            lines.append(
                f"- bird-etl / {other}: **{ratio:.2f}x** (messages/s; target ≥ {wanted:g}x: {verdict})"
            )
    bird = _by_name(results).get("bird-etl")
    if bird:
        verdict = _verdict(bird.rate >= TARGET_RATE)
        lines.append(
            f"- bird-etl: **{bird.rate:,.0f} messages/s** end to end (target ≥ {TARGET_RATE:,}: {verdict})"
        )
    generated = results.emulator["messages"]
    complete = all(outcome.messages == generated for outcome in results.mode1)
    lines += [
        f"- Every contender delivered all {generated:,} messages: {'yes' if complete else 'NO'}.",
        "- bird-etl ran `backfill --only messages` (the same messages the floor and dlt fetch;"
        " interactions are measured in mode 3) with its request budget lifted to"
        f" {config.unlimited_budget:,.0f} GET/s"
        f" (`BIRD_RATE_LIMIT_PER_S={config.unlimited_budget:g}`; its default is 40): the emulator enforces no"
        " limit in this mode, and neither the floor nor dlt has a budget.",
    ]
    load = _load_per_partition(bird) if bird else None
    if bird and load:
        lines.append(
            f"- bird-etl's step `{ARCHIVE_STEP}` (landing, with each day loaded into the warehouse as soon as"
            f" it has landed), summed over its {bird.figures.runs} Dagster runs: {_step_seconds(bird):.1f} s,"
            f" of which the warehouse loads took {_load_seconds(bird):.1f} s on their own thread;"
            f" the warehouse load per partition (day): **{load[0]:.2f} s** for {load[1]:,.0f} rows."
        )
    return lines


def _budget_row(run: BudgetRun, delivered: str) -> list[str]:
    m = run.outcome.measured
    return [
        f"{run.first_day} .. {run.last_day}",
        delivered,
        f"{m.seconds:.1f}",
        _mib(m.peak_rss),
        f"{m.requests:,}",
        f"{m.served_429:,}",
        f"{run.accepted / run.active_s:.1f}" if run.active_s else "-",
        f"{run.share(run.active_s):.0%} ({run.active_s:.1f} s)",
        f"{run.share(m.seconds):.0%}",
        f"{run.busiest_second}",
    ]


BUDGET_HEADERS = [
    "days",
    "{what}",
    "wall s",
    "peak RSS MiB",
    "GETs",
    "429s caused",
    "GETs/s (first to last GET)",
    "budget used, first to last GET",
    "budget used over wall",
    "busiest second (GETs, sampled)",
]


def mode2_lines(results: Results) -> list[str]:
    run = results.budget
    if run is None:
        return ["Not run (`--no-rate-limit`)."]
    config = results.config
    verdict = _verdict(run.share(run.active_s) >= TARGET_BUDGET_SHARE)
    headers = [h.format(what="messages") for h in BUDGET_HEADERS]
    return [
        f"`bird-etl backfill --only messages` with `BIRD_RATE_LIMIT_PER_S={config.budget_rate:g}`, new data"
        f" directory, the emulator refusing anything above {BIRD_LIMIT} GET/s with a 429.",
        "",
        *_table(headers, [_budget_row(run, f"{run.outcome.messages:,}")], "lrrrrrrrrr"),
        "",
        f'- Budget used = accepted GETs / ({BIRD_LIMIT} x seconds). "First to last GET" spans the sampled'
        ' first and last GET (every 0.25 s); "over wall" adds start-up, the last warehouse load and exit.'
        f" Target ≥ {TARGET_BUDGET_SHARE:.0%} (first to last GET): {verdict}; 429s caused: target 0,"
        f" {_verdict(run.outcome.measured.served_429 == 0)}.",
    ]


def mode3_lines(results: Results) -> list[str]:
    run = results.interactions
    if run is None:
        return ["Not run (`--no-rate-limit`)."]
    config = results.config
    figures = run.outcome.figures.metadata.get("raw_interactions", {})
    headers = [h.format(what="messages of those days") for h in BUDGET_HEADERS]
    lines = [
        "`bird-etl backfill --only interactions` over the last"
        f" {config.interaction_days} day(s) mode 2 landed,"
        f" same data directory, `BIRD_RATE_LIMIT_PER_S={config.budget_rate:g}`, the emulator enforcing"
        f" {BIRD_LIMIT} GET/s.",
        "",
        *_table(headers, [_budget_row(run, f"{run.outcome.messages:,}")], "lrrrrrrrrr"),
        "",
    ]
    if not figures:
        return [
            *lines,
            "No `raw_interactions` materialization was found: the policy's savings are not measured.",
        ]
    naive = figures.get("requests_naive", 0)
    saved = 1 - figures.get("requests", 0) / naive if naive else 0.0
    step_rate = figures["requests"] / figures["duration_s"] if figures.get("duration_s") else None
    lines += [
        "From the metadata of the run's `raw_interactions` materializations (summed over days):",
        "",
        *_table(
            [
                "messages",
                "eligible",
                "asked (GETs)",
                "not found",
                "naive GETs (one per message)",
                "saved by the eligibility policy",
                "GETs/s inside the step",
            ],
            [
                [
                    f"{figures.get('messages', 0):,.0f}",
                    f"{figures.get('eligible_messages', 0):,.0f}",
                    f"{figures.get('messages_asked', 0):,.0f}",
                    f"{figures.get('messages_not_found', 0):,.0f}",
                    f"{naive:,.0f}",
                    f"{saved:.0%} ({naive - figures.get('requests', 0):,.0f} GETs)",
                    "-" if step_rate is None else f"{step_rate:.1f}",
                ]
            ],
            "rrrrrrr",
        ),
        "",
        "- Interaction GETs/s against the budget:"
        f" {run.accepted / run.active_s if run.active_s else 0:.1f} of"
        f" {BIRD_LIMIT} GET/s ({run.share(run.active_s):.0%}) from the first to the last GET; 429s caused:"
        f" {run.outcome.measured.served_429:,} ({_verdict(run.outcome.measured.served_429 == 0)}).",
    ]
    return lines


def scaling_lines(results: Results) -> list[str]:
    runs = results.scaling
    if not runs:
        return ["Not run (`--scaling` empty)."]
    config = results.config
    rows = []
    for run in runs:
        m = run.outcome.measured
        steps = _step_seconds(run.outcome)
        load = _load_per_partition(run.outcome)
        rows.append(
            [
                f"{run.generated:,}",
                f"{run.outcome.messages:,}",
                f"{run.generated_s:.0f}",
                f"{m.seconds:.1f}",
                f"{run.outcome.rate:,.0f}",
                f"{m.cpu_seconds:.1f}",
                _mib(m.peak_rss),
                f"{steps:.1f}",
                "-" if load is None else f"{load[0]:.2f}",
                f"{steps / run.generated * 1e6:.1f}" if run.generated else "-",
                f"{m.seconds / run.generated * 1e6:.1f}" if run.generated else "-",
            ]
        )
    lines = [
        f"`bird-etl backfill --only messages` of ONE day (one partition) holding each size, each on its own"
        f" emulator ({config.latency_ms:g} ms a request; generation not timed) and into a new data directory,"
        f" `BIRD_RATE_LIMIT_PER_S={config.unlimited_budget:g}`.",
        "",
        *_table(
            [
                "messages in the day",
                "in the warehouse",
                "generated in s",
                "wall s",
                "messages/s",
                "CPU s",
                "peak RSS MiB",
                "land and load step s",
                "warehouse load s (the partition)",
                "steps s per 1M messages",
                "wall s per 1M messages",
            ],
            rows,
            "rrrrrrrrrrr",
        ),
        "",
    ]
    complete = all(run.outcome.messages == run.generated for run in runs)
    lines.append(
        f"- Every scaling run delivered all its messages to the warehouse: {'yes' if complete else 'NO'}."
    )
    if len(runs) >= 2:
        smallest, largest = runs[0], runs[-1]
        spread = largest.outcome.measured.peak_rss / smallest.outcome.measured.peak_rss - 1
        per_small = _step_seconds(smallest.outcome) / smallest.generated
        per_large = _step_seconds(largest.outcome) / largest.generated
        lines += [
            f"- Memory: peak RSS {_mib(smallest.outcome.measured.peak_rss)} MiB at {smallest.generated:,},"
            f" {_mib(largest.outcome.measured.peak_rss)} MiB at {largest.generated:,} ({spread:+.0%}; target"
            f" within ±{TARGET_RSS_SPREAD:.0%}: {_verdict(abs(spread) <= TARGET_RSS_SPREAD)}; ≤ 1 GiB:"
            f" {_verdict(max(r.outcome.measured.peak_rss for r in runs) <= TARGET_RSS)}).",
            "- Time: the pipeline's step (landing, the load overlapping it) takes"
            f" {per_large / per_small:.2f}x the time per message at {largest.generated:,} that it takes"
            f" at {smallest.generated:,} (1.00x is linear;"
            " below 1 the fixed per-run costs are being spread)."
            f" {'Linear or better' if per_large <= per_small * 1.2 else 'Worse than linear'} within 20%.",
        ]
    lines.append(
        "- Peak RSS is the bird-etl process tree's (the CLI and its Dagster run workers), sampled every"
        " 50 ms;"
        " the emulator is a separate process, not counted (its RSS with the largest day:"
        f" {_mib(runs[-1].emulator_rss)} MiB)."
    )
    return lines


def transforms_lines(results: Results) -> list[str]:
    timing = results.transforms
    if timing is None:
        return ["Not run."]
    f = timing.figures
    verdict = _verdict(f["total"]["median_s"] <= TARGET_TRANSFORMS_S)
    rows = [
        [part, f"{f[key]['median_s']:.3f}", f"{f[key]['best_s']:.3f}"]
        for part, key in (
            ("`flattened_slices`, every partition (pipelines/loading.py)", "flatten"),
            ("marts `delivery_daily` + `failure_breakdown` (transforms/marts.py)", "marts"),
            ("total", "total"),
        )
    ]
    return [
        f"Over mode 1's lake: {f['messages']:,} messages in {f['partitions']} `raw_messages` partitions,"
        " in one process (`python -m bench.inprocess transforms`), warm: one untimed pass, then"
        f" {f['repeat']} timed.",
        "",
        *_table(["part", "median s", "best s"], rows, "lrr"),
        "",
        f"- Target ≤ {TARGET_TRANSFORMS_S:g} s on 1M messages: {verdict} ({f['messages']:,} messages here;"
        f" marts: {f['delivery_daily_rows']:,} `delivery_daily` rows, {f['failure_breakdown_rows']:,}"
        " `failure_breakdown` rows). Peak RSS of the process:"
        f" {_mib(timing.measured.peak_rss)} MiB.",
    ]


def report_lines(results: Results) -> list[str]:
    run = results.report
    if run is None:
        return ["Not run (`--report-rows 0`)."]
    f = run.inprocess.figures
    verdict = _verdict(f["total"]["median_s"] <= TARGET_REPORT_S)
    read_all = f["messages_read"] == run.rows
    generated = run.generated.json_line()
    cli = statistics.median(run.cli_s) if run.cli_s else 0.0
    return [
        f"{run.rows:,} messages generated straight into a new warehouse by `bench/synth.py` (vectorized"
        " numpy and polars: realistic shares of statuses, failure codes and sources, channels, platforms"
        " and countries;"
        f" {generated['partitions']} daily partitions), loaded with `warehouse.store.Warehouse.rebuild` (the"
        " API `bird-etl rebuild` uses, fed the generated partitions instead of the lake's) in"
        f" {run.generated.seconds:.0f} s (not timed); warehouse file"
        f" {_mib(generated['warehouse_bytes'])} MiB."
        f" The report covers {run.first_day} .. {run.last_day}, and its baseline (the previous period of the"
        " same length) the days before, so it reads every generated message.",
        "",
        *_table(
            ["part", "median s", "best s"],
            [
                [
                    "DuckDB counts the messages (`open_warehouse` + `read_report_inputs`)",
                    f"{f['read']['median_s']:.3f}",
                    f"{f['read']['best_s']:.3f}",
                ],
                [
                    "compute (`failure_report` over the counts, by channel)",
                    f"{f['compute']['median_s']:.3f}",
                    f"{f['compute']['best_s']:.3f}",
                ],
                [
                    "**in-process total** (read + compute)",
                    f"**{f['total']['median_s']:.3f}**",
                    f"{f['total']['best_s']:.3f}",
                ],
                [
                    "`bird-etl report --format json` (whole process: imports, read, compute, render)",
                    f"{cli:.3f}",
                    f"{min(run.cli_s, default=0):.3f}",
                ],
            ],
            "lrr",
        ),
        "",
        f"- Target ≤ {TARGET_REPORT_S:g} s warm on 10M messages (in-process): {verdict}. Rows read:"
        f" {f['messages_read']:,} ({'every' if read_all else 'NOT every'} generated message)."
        f" Polars receives their counts, {f['counted_rows']:,} rows (UTC day x channel x status x failure"
        " code), not the messages."
        f" Warm: one untimed pass first, then {f['repeat']} timed (CLI: {len(run.cli_s)} timed after one"
        " untimed).",
    ]


def render(results: Results) -> str:
    config = results.config
    emulator = results.emulator
    smaller = _smaller_than_targets(results)
    all_targets = targets(results)
    lines = [
        "# bird-etl benchmark results",
        "",
        f"Written by `python -m bench.run {' '.join(results.argv)}` at {results.started:%Y-%m-%d %H:%M} UTC."
        " Every figure below was measured in that one run; nothing here is an estimate.",
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in machine().items()),
        "",
        "## Targets (issue 8)",
        "",
        *_table(
            ["target", "measured", "verdict"],
            [[t.name, t.measured, _verdict(t.met)] for t in all_targets],
            "lrl",
        ),
        "",
    ]
    if smaller:
        lines += [
            f"Sizes below the targets' in this run ({'; '.join(smaller)}): the verdicts are indicative only.",
            "",
        ]
    lines += [
        "## Setup",
        "",
        f"- Emulator (own process, uvicorn, clock pinned): {emulator['messages']:,} messages over"
        f" {config.days} UTC days {config.first_day} .. {config.last_day}, generated in"
        f" {emulator['generated_s']:.0f} s (not timed), {config.latency_ms:g} ms added to every API GET;"
        f" emulator RSS {_mib(emulator['rss'])} MiB.",
        "- Each contender runs as its own process; wall time is its whole process, start to exit (imports"
        " and Dagster start-up included); peak RSS is the sum over its process tree, sampled every 50 ms;"
        ' CPU s is the user + system time of that tree. "Load after" is the machine\'s 1-minute load'
        " average when it finished: a load above the core count slows every figure here, which CPU s shows"
        " less than wall time.",
        "- Messages are counted at the destination: rows in the warehouse's `messages` table (bird-etl),"
        " in dlt's `messages` table (dlt), messages parsed (floor). Requests: GETs the emulator served.",
        "",
        "## Mode 1: throughput, no rate limit",
        "",
        *mode1_lines(results),
        "",
        f"## Mode 2: the emulator enforcing Bird's {BIRD_LIMIT} GET/s",
        "",
        *mode2_lines(results),
        "",
        "## Mode 3: interactions, under the same limit",
        "",
        *mode3_lines(results),
        "",
        "## Scaling: one partition of growing size",
        "",
        *scaling_lines(results),
        "",
        "## Transforms",
        "",
        *transforms_lines(results),
        "",
        "## Failure-rate report",
        "",
        *report_lines(results),
        "",
        "## Commands",
        "",
        "```",
        *_commands(results),
        "```",
        "",
        "(`BIRD_API_URL`, `BIRD_ACCESS_KEY`, `BIRD_WORKSPACE_ID` point bird-etl at the emulator;"
        " `BIRD_RATE_LIMIT_PER_S` as stated in each section.)",
        "",
        "Profiles of the hot paths, measured separately: `bench/PROFILE.md`.",
        "",
    ]
    return "\n".join(lines)


def _commands(results: Results) -> list[str]:
    commands = [outcome.measured.command for outcome in results.mode1]
    commands += [run.outcome.measured.command for run in (results.budget, results.interactions) if run]
    commands += [run.outcome.measured.command for run in results.scaling]
    if results.transforms:
        commands.append(results.transforms.measured.command)
    if results.report:
        commands += [results.report.generated.command, results.report.inprocess.measured.command]
        commands.append(results.report.cli_command)
    return [_portable(command) for command in commands]
