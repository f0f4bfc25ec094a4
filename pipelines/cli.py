"""`bird-etl`: the command line of the archive (demo, backfill, report, sql, emulator, ui, rebuild).

Every command fails with one clear line and a non-zero exit on bad input; none prints a traceback for an
error a user can fix.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pipelines.bird.errors import BirdError
from pipelines.bird.settings import (
    ENV_ACCESS_KEY,
    ENV_API_URL,
    ENV_WORKSPACE_ID,
    ENV_WORKSPACES,
    BirdSettings,
    workspace_env_name,
    workspaces_from_env,
)
from pipelines.ingest.windows import days_between
from pipelines.report_cli import report_command, sql_command
from pipelines.resources import ENV_DATA_DIR, ENV_RATE_LIMIT, data_dir_from_env, request_budget_from_env

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from pipelines.backfill import RunOutcome

console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)  # an error stays one line, however narrow the terminal

DEMO_DAYS = 7
EMULATOR_RATE_LIMIT_PER_S = 400
MIN_FREE_BYTES = 256 * 2**20
# A backfill's runs at a time by default: one per workspace, up to this many worker processes.
MAX_DEFAULT_RUNS = 4


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    # Retries log warnings for the run logs; on the terminal the progress bar and the final line say it all.
    logging.getLogger("pipelines").addHandler(logging.NullHandler())
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as error:
        err_console.print(f"[red]error:[/red] {error.format_message()}", highlight=False)
        sys.exit(error.exit_code)
    except BirdError as error:
        err_console.print(f"[red]error:[/red] {error}", highlight=False)
        sys.exit(2)
    except OSError as error:  # an unwritable or full data directory, say
        where = f": {error.filename}" if error.filename else ""
        err_console.print(f"[red]error:[/red] {error.strerror or error}{where}", highlight=False)
        sys.exit(1)
    except Exception as error:  # a user sees one line; BIRD_ETL_DEBUG=1 shows the traceback
        if os.environ.get("BIRD_ETL_DEBUG"):
            raise
        first_line = (str(error).strip().splitlines() or [""])[0]
        err_console.print(
            f"[red]error:[/red] {type(error).__name__}: {first_line} (BIRD_ETL_DEBUG=1 shows the traceback)",
            highlight=False,
        )
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Lake, warehouse and Dagster instance (default ${ENV_DATA_DIR} or ./data).",
)
def cli(data_dir: Path | None) -> None:
    """bird-etl: archive Bird Channels API messages and report on their delivery."""
    if data_dir is not None:
        os.environ[ENV_DATA_DIR] = str(data_dir.resolve())


cli.add_command(report_command)
cli.add_command(sql_command)


def _date(_ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param=param) from None


@cli.command()
@click.option("--start", callback=_date, required=True, help="First UTC day (YYYY-MM-DD).")
@click.option("--end", callback=_date, required=True, help="Last UTC day, included (YYYY-MM-DD).")
@click.option("--missing-only", is_flag=True, help="Only days never materialized.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 32),
    default=None,
    help="Runs at a time (worker processes). Default: one per workspace, at most 4: a run lands several days"
    " of its workspace at once and loads each into the warehouse as it lands, on both cores.",
)
@click.option(
    "--source",
    type=click.Choice(["workspace", "channels"]),
    default="workspace",
    show_default=True,
    help="Page the workspace list, or each channel's list.",
)
@click.option("--platform", "platforms", multiple=True, help="With --source channels: only these platforms.")
@click.option(
    "--only",
    type=click.Choice(["messages", "interactions"]),
    default=None,
    help="Messages only (interactions later), or the interactions of days already landed. Default: both.",
)
@click.option(
    "--workspace",
    "workspace_names",
    multiple=True,
    help="Only these workspaces (names in $BIRD_WORKSPACES, or ids). Default: every configured one.",
)
@click.option(
    "--days-per-run",
    type=click.IntRange(0, 366),
    default=0,
    show_default=True,
    help="Days of a workspace per Dagster run (0: as few runs as keep --concurrency workers busy).",
)
@click.option("--emulator", "use_emulator", is_flag=True, help="Run against the embedded Bird API emulator.")
@click.option(
    "--emulator-workspaces",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="With --emulator: how many workspaces it serves (each with its own key).",
)
def backfill(
    start: dt.date,
    end: dt.date,
    missing_only: bool,
    concurrency: int | None,
    source: str,
    platforms: tuple[str, ...],
    only: str | None,
    workspace_names: tuple[str, ...],
    days_per_run: int,
    use_emulator: bool,
    emulator_workspaces: int,
) -> None:
    """Land and load every UTC day from START to END of each workspace as Dagster runs."""
    if end < start:
        raise click.BadParameter(f"--end {end} is before --start {start}")
    if platforms and source != "channels":
        raise click.BadParameter("--platform filters channels: use it with --source channels")
    _check_local_settings()
    instance = _instance()  # local: before the preflight, so that the first request starts the work
    with _bird_api(use_emulator, emulator_workspaces):
        _backfill(
            instance,
            days_between(start, end),
            workspace_ids=_selected_workspaces(workspace_names),
            job=only or "all",
            missing_only=missing_only,
            concurrency=concurrency,
            days_per_run=days_per_run,
            archive_config={"source": source, "platforms": list(platforms)},
        )


def _selected_workspaces(names: tuple[str, ...]) -> list[str]:
    """The ids of the configured workspaces to backfill (all of them without names)."""
    configured = workspaces_from_env()
    if not names:
        return [w.workspace_id for w in configured]
    by_name = {w.name: w.workspace_id for w in configured} | {
        w.workspace_id: w.workspace_id for w in configured
    }
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)} not configured (configured: {', '.join(sorted(by_name))})",
            param_hint="--workspace",
        )
    return sorted({by_name[name] for name in names})


@cli.command()
@click.option("--days", type=click.IntRange(1, 14), default=DEMO_DAYS, show_default=True)
@click.option("--workspaces", type=click.IntRange(1, 16), default=1, show_default=True)
def demo(days: int, workspaces: int) -> None:
    """Start the emulator, backfill its last DAYS days, and print the failure-rate report."""
    today = dt.datetime.now(dt.UTC).date()
    instance = _instance()
    with _bird_api(use_emulator=True, workspaces=workspaces):
        outcomes = _backfill(
            instance,
            days_between(today - dt.timedelta(days=days), today - dt.timedelta(days=1)),
            workspace_ids=[w.workspace_id for w in workspaces_from_env()],
        )
    _print_report(today - dt.timedelta(days=days), today - dt.timedelta(days=1))
    warehouse = data_dir_from_env() / "warehouse.duckdb"
    console.print(
        f"\n[bold]{sum(len(o.days) for o in outcomes if o.success)} days archived.[/bold] "
        f"Warehouse: {warehouse}\n"
        f"Query it:  .venv/bin/duckdb -readonly {warehouse} -c 'select * from delivery_daily limit 5'\n"
        f'       or  .venv/bin/bird-etl sql "select status, count(*) from messages group by all"\n'
        f"Browse the runs:  make ui"
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--days", type=click.IntRange(1, 3650), default=14, show_default=True)
@click.option("--messages-per-day", type=click.IntRange(1, 10_000_000), default=2000, show_default=True)
@click.option(
    "--access-key", envvar="BIRD_EMULATOR_ACCESS_KEY", default="emulator-access-key", show_default=True
)
@click.option("--workspaces", type=click.IntRange(1, 16), default=1, show_default=True)
def emulator(
    host: str, port: int, seed: int, days: int, messages_per_day: int, access_key: str, workspaces: int
) -> None:
    """Serve the Bird API emulator (synthetic workspaces, each with its own key) over HTTP."""
    from pipelines.emulator.dataset import DatasetSpec
    from pipelines.emulator.server import serve

    spec = DatasetSpec(seed=seed, days=days, messages_per_day=messages_per_day)
    serve(host=host, port=port, spec=spec, access_key=access_key, workspaces=workspaces)


@cli.command()
@click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True)
@click.option(
    "--emulator/--no-emulator",
    "use_emulator",
    default=None,
    help="Serve runs against the embedded emulator (default: when BIRD_API_URL is unset).",
)
def ui(port: int, use_emulator: bool | None) -> None:
    """Serve the Dagster UI on this data directory (schedules on, runs launchable)."""
    from pipelines.backfill import use_instance
    from pipelines.partitions import register_workspaces

    use_emulator = (ENV_API_URL not in os.environ) if use_emulator is None else use_emulator
    instance = use_instance(data_dir_from_env())
    with _bird_api(use_emulator):
        # The UI's partitions show the configured workspaces at once (the sensor would add them shortly).
        register_workspaces(instance, [w.workspace_id for w in workspaces_from_env()])
        console.print(f"Dagster UI on http://127.0.0.1:{port} (Ctrl-C to stop)")
        command = [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-m",
            "pipelines.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ]
        with suppress(KeyboardInterrupt):
            subprocess.run(command, check=False)


@cli.command()
def rebuild() -> None:
    """Rebuild the warehouse from the Parquet lake, without calling the API."""
    from pipelines.reporting import rebuild_warehouse

    count = rebuild_warehouse(data_dir_from_env())
    console.print(f"warehouse rebuilt from {count} lake partitions")


@contextmanager
def _bird_api(use_emulator: bool, workspaces: int = 1) -> Iterator[None]:
    """Point BIRD_* at the embedded emulator (`workspaces` of them) for the duration, or check the real
    settings now."""
    if not use_emulator:
        for workspace in workspaces_from_env():  # a missing or wrong key, or no API: one line, in seconds
            _preflight(workspace)
        yield
        return
    from pipelines.emulator.dataset import DatasetSpec
    from pipelines.emulator.server import run_emulator
    from pipelines.emulator.workspaces import generate_workspaces

    console.print("starting the Bird API emulator ...")
    with run_emulator(workspaces=generate_workspaces(DatasetSpec(), workspaces)) as running:
        if workspaces == 1:
            settings = {ENV_ACCESS_KEY: running.access_key, ENV_WORKSPACE_ID: running.workspace_id}
        else:
            names = [f"ws{i}" for i in range(1, workspaces + 1)]
            settings = {
                ENV_WORKSPACES: ",".join(
                    f"{n}={w.workspace_id}" for n, w in zip(names, running.workspaces, strict=True)
                ),
                **{
                    workspace_env_name(ENV_ACCESS_KEY, n): w.access_key
                    for n, w in zip(names, running.workspaces, strict=True)
                },
            }
        # The emulator enforces no limit unless asked; interactions are one GET per message, so the
        # demo draws on a larger budget than Bird's 50/s (set BIRD_RATE_LIMIT_PER_S to try Bird's).
        settings |= {
            ENV_API_URL: running.base_url,
            ENV_RATE_LIMIT: os.environ.get(ENV_RATE_LIMIT) or str(EMULATOR_RATE_LIMIT_PER_S),
        }
        saved = {name: os.environ.get(name) for name in [*settings, ENV_WORKSPACES]}
        os.environ.pop(ENV_WORKSPACES, None)
        os.environ.update(settings)
        for workspace in running.workspaces:
            console.print(f"Bird API emulator on {running.base_url} (workspace {workspace.workspace_id})")
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _check_local_settings() -> None:
    """What can be checked without the network, before anything else: the budget and the data directory."""
    try:
        request_budget_from_env()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    data_dir = data_dir_from_env()
    data_dir.mkdir(parents=True, exist_ok=True)  # an OSError here is one line from main()
    (data_dir / ".writable").touch()
    (data_dir / ".writable").unlink()
    free = shutil.disk_usage(data_dir).free
    if free < MIN_FREE_BYTES:
        raise click.ClickException(
            f"only {free / 2**20:.0f} MiB free in {data_dir}; a backfill needs at least "
            f"{MIN_FREE_BYTES / 2**20:.0f} MiB (staging, lake, warehouse snapshots, run history)"
        )


def _preflight(settings: BirdSettings) -> None:
    """One cheap request before any run, so that a wrong key or an unreachable API fails fast and clearly."""
    from pipelines.bird.client import BirdClient
    from pipelines.bird.retry import RetryPolicy

    with BirdClient(settings, retry=RetryPolicy(max_attempts=2, initial=0.2, maximum=0.5)) as client:
        client.list_channels()


def _instance() -> DagsterInstance:
    """The Dagster instance of the data directory (its run history)."""
    from pipelines.backfill import use_instance

    return use_instance(data_dir_from_env())


def _backfill(
    instance: DagsterInstance,
    days: list[dt.date],
    *,
    workspace_ids: list[str],
    job: str = "all",
    missing_only: bool = False,
    concurrency: int | None = None,
    days_per_run: int = 0,
    archive_config: dict[str, object] | None = None,
) -> list[RunOutcome]:
    """Run the days with a progress bar (days done, messages landed, messages/s, ETA); fail loudly."""
    from pipelines.backfill import missing_days, refresh_channels, run_backfill
    from pipelines.progress import MESSAGES_LANDED

    todo = {
        workspace_id: missing_days(instance, workspace_id, days) if missing_only else days
        for workspace_id in workspace_ids
    }
    todo = {workspace_id: days for workspace_id, days in todo.items() if days}
    if not todo:
        console.print("every partition in the range is already materialized")
        return []
    failure = refresh_channels(instance)
    if failure:
        raise click.ClickException(f"refreshing channels failed (run {failure.run_id}): {failure.error}")
    started, landed_before = time.perf_counter(), MESSAGES_LANDED.total
    unit = "workspace days" if len(todo) > 1 else "days"
    columns = [
        TextColumn("[bold]backfill"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit + "  {task.fields[messages]:,} messages  {task.fields[rate]:,.0f}/s"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, refresh_per_second=4) as progress:
        task = progress.add_task("backfill", total=sum(map(len, todo.values())), messages=0, rate=0.0)

        def refresh(done: int = 0) -> None:
            landed = MESSAGES_LANDED.total - landed_before
            elapsed = max(time.perf_counter() - started, 1e-6)
            progress.update(task, advance=done, messages=landed, rate=landed / elapsed)

        def on_outcome(outcome: RunOutcome) -> None:
            refresh(len(outcome.days))
            if not outcome.success:
                progress.console.print(
                    f"[red]{outcome.label} failed[/red] (run {outcome.run_id}): {outcome.error}"
                )

        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(0.5):
                refresh()

        threading.Thread(target=tick, daemon=True).start()
        try:
            outcomes = run_backfill(
                instance,
                todo,
                job=job,
                concurrency=concurrency or min(len(todo), MAX_DEFAULT_RUNS),
                days_per_run=days_per_run,
                on_outcome=on_outcome,
                archive_config=archive_config,
            )
        finally:
            stop.set()
    failed = [o for o in outcomes if not o.success]
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(outcomes)} runs failed ({', '.join(o.label for o in failed[:3])}"
            f"{', ...' if len(failed) > 3 else ''}); their previous versions are intact; re-run to retry"
        )
    return outcomes


def _print_report(start: dt.date, end: dt.date) -> None:
    from pipelines.reporting import failure_rate_by_channel

    table = failure_rate_by_channel(data_dir_from_env(), start, end)
    console.print(table)


if __name__ == "__main__":
    main()
