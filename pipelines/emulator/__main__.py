"""`python -m pipelines.emulator`: serve synthetic Bird workspaces on loopback for manual runs."""

import argparse
from datetime import date

from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--access-key", default="emulator-access-key", help="the first workspace's key")
    parser.add_argument(
        "--workspaces", type=int, default=1, help="serve this many workspaces, keyed KEY, KEY-2, KEY-3, ..."
    )
    parser.add_argument("--seed", type=int, default=DatasetSpec.seed)
    parser.add_argument("--days", type=int, default=DatasetSpec.days)
    parser.add_argument("--messages-per-day", type=int, default=DatasetSpec.messages_per_day)
    parser.add_argument(
        "--end", type=date.fromisoformat, default=None, help="exclusive UTC date, default today"
    )
    args = parser.parse_args()
    spec = DatasetSpec(seed=args.seed, days=args.days, messages_per_day=args.messages_per_day, end=args.end)
    serve(host=args.host, port=args.port, spec=spec, access_key=args.access_key, workspaces=args.workspaces)


if __name__ == "__main__":
    main()
