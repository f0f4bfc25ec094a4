"""bird-etl's pipelines: the Bird API client, ingestion, Dagster definitions and the CLI.

Arrow allocates through the C library's malloc in our processes instead of its bundled jemalloc, which kept
freed page and assembly buffers long after a day landed (`release_unused` gave back only part of them). On
a day of 1.1M messages in one `bird-etl backfill`: peak RSS 929-1,049 MiB with jemalloc, 840-847 MiB with
malloc, at the same wall time. Arrow reads the setting when it first allocates, so it is set here, before
any module of ours touches Arrow; a value the user set wins.
"""

import os

os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
