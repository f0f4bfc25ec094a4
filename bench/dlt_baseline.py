"""`python -m bench.dlt_baseline`: the same messages loaded into DuckDB the way a dlt user would write it.

dlt's `RESTClient` with a cursor paginator on `nextPageToken`, one day window per request chain, the days
dealt round-robin to `--resources` parallelized resources feeding one `messages` table, the Parquet loader,
and a merge on `id`. dlt defaults otherwise (nested fields become child tables, as a dlt user gets them).
Prints one JSON line: messages loaded, seconds, and the time of each dlt phase.
"""

import argparse
import os
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dlt
import duckdb
import orjson
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

from bench.floor import rfc3339, windows


def messages_source(
    base_url: str, access_key: str, workspace_id: str, days: list[date], resources: int
) -> list[Any]:
    """`resources` parallel resources, each paging its share of the days into the `messages` table."""
    client = RESTClient(
        base_url=base_url,
        headers={"Authorization": f"AccessKey {access_key}", "Accept": "application/json"},
        paginator=JSONResponseCursorPaginator(cursor_path="nextPageToken", cursor_param="pageToken"),
        data_selector="results",
    )
    path = f"/workspaces/{workspace_id}/channels/messages"

    def pages(share: list[date]) -> Iterator[list[dict[str, Any]]]:
        for day in share:
            for start, end in windows(day, day, 1):
                params = {"startAt": rfc3339(start), "endAt": rfc3339(end), "limit": 1000}
                yield from client.paginate(path, params=params)

    return [
        dlt.resource(
            pages(days[i::resources]),
            name=f"messages_{i}",
            table_name="messages",
            write_disposition="merge",
            primary_key="id",
            parallelized=True,
        )
        for i in range(resources)
        if days[i::resources]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--workspace-id", required=True)
    parser.add_argument("--start", type=date.fromisoformat, required=True, help="first UTC day")
    parser.add_argument("--end", type=date.fromisoformat, required=True, help="last UTC day, included")
    parser.add_argument("--resources", type=int, default=4, help="parallelized resources")
    parser.add_argument("--work-dir", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    days = [args.start + timedelta(days=i) for i in range((args.end - args.start).days + 1)]
    database = args.work_dir / "dlt.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name="bench_dlt",
        pipelines_dir=str(args.work_dir / "pipelines"),
        destination=dlt.destinations.duckdb(str(database)),
        dataset_name="bird",
    )
    phases: dict[str, float] = {}
    started = time.perf_counter()
    pipeline.extract(
        messages_source(args.url, args.access_key, args.workspace_id, days, args.resources),
        loader_file_format="parquet",
    )
    phases["extract_s"] = time.perf_counter() - started
    pipeline.normalize()
    phases["normalize_s"] = time.perf_counter() - started - phases["extract_s"]
    pipeline.load()
    seconds = time.perf_counter() - started
    phases["load_s"] = seconds - phases["extract_s"] - phases["normalize_s"]
    with duckdb.connect(str(database), read_only=True) as connection:
        (loaded,) = connection.execute("select count(*) from bird.messages").fetchone()
    result = {"messages": loaded, "seconds": round(seconds, 3), **{k: round(v, 3) for k, v in phases.items()}}
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
