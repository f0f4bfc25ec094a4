"""The partitioning of the archive: one UTC day of message creation per partition."""

from __future__ import annotations

import os
import warnings
from typing import Final

import dagster as dg

# Partitioned asset checks (one verdict per day) are "preview" in Dagster 1.13; we use them knowingly, and the
# warning would otherwise reach the stderr of every command that starts a run.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec is currently in preview.*")

# Dagster needs the partition set when it loads the definitions, so this one setting is read at load time.
ENV_PARTITIONS_START: Final = "BIRD_ETL_PARTITIONS_START"
DEFAULT_PARTITIONS_START: Final = "2025-01-01"

DAILY: Final = dg.DailyPartitionsDefinition(
    start_date=os.environ.get(ENV_PARTITIONS_START, "").strip() or DEFAULT_PARTITIONS_START,
    timezone="UTC",
)
