"""`python -m bench.emulator`: the Bird API emulator in its own process, never sharing a GIL with a client.

Generates the dataset (not timed), serves it on a free loopback port, prints one JSON line saying where, and
serves until its standard input closes. The clock is pinned at the end of the dataset so that nothing is
re-rendered while a benchmark runs; faults (latency, rate limit) are set over PUT /_emulator/faults.
"""

import argparse
import sys
import time
from datetime import UTC, date, datetime
from datetime import time as clock_time

import orjson

from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.faults import Faults
from pipelines.emulator.server import run_emulator
from pipelines.emulator.store import MessageStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, required=True, help="about this many messages in all")
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True, help="exclusive UTC date")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=DatasetSpec.seed)
    args = parser.parse_args()
    spec = DatasetSpec(
        seed=args.seed, days=args.days, messages_per_day=max(1, args.messages // args.days), end=args.end
    )
    started = time.perf_counter()
    store = MessageStore.generate(spec, now=datetime.combine(args.end, clock_time(), UTC))
    generated_s = time.perf_counter() - started
    with run_emulator(store=store, faults=Faults(latency_ms=args.latency_ms)) as running:
        ready = {
            "base_url": running.base_url,
            "access_key": running.access_key,
            "workspace_id": running.workspace_id,
            "messages": len(store),
            "start": spec.start.isoformat(),
            "generated_s": round(generated_s, 1),
        }
        sys.stdout.write(orjson.dumps(ready).decode() + "\n")
        sys.stdout.flush()
        sys.stdin.read()  # serve until the harness closes our stdin


if __name__ == "__main__":
    main()
