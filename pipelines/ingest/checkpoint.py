"""Per-partition fetch progress, so a run that died resumes mid-window instead of starting the day again.

The checkpoint of a partition lives in its staging directory beside the spool files it names. It records the
leaf windows of the fan-out and, for each, how far paging got: the spool files landed and the page token that
follows them. It is rewritten atomically after every change that matters for a resume.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

CHECKPOINT_FILE = "checkpoint.json"


class LeafState(StrEnum):
    PENDING = "pending"
    PAGING = "paging"
    DONE = "done"


@dataclass
class LeafProgress:
    """One leaf of the fan-out: a channel (or the whole workspace) over one sub-window."""

    window_key: str
    channel_id: str | None = None
    state: LeafState = LeafState.PENDING
    next_token: str | None = None
    pages: int = 0
    rows: int = 0
    spool_files: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)  # {"raw", "reason"} of quarantined items

    @property
    def leaf_id(self) -> str:
        return f"{self.channel_id or 'workspace'}:{self.window_key}"


@dataclass
class Checkpoint:
    """The fan-out plan of one partition and each leaf's progress."""

    partition_key: str
    plan_key: str  # source and settings that shaped the plan; a different plan discards the checkpoint
    leaves: dict[str, LeafProgress] = field(default_factory=dict)
    resumed: bool = False

    def add(self, leaf: LeafProgress) -> None:
        self.leaves[leaf.leaf_id] = leaf

    def replace(self, parent: LeafProgress, children: list[LeafProgress]) -> None:
        del self.leaves[parent.leaf_id]
        for child in children:
            self.add(child)

    def unfinished(self) -> list[LeafProgress]:
        return [leaf for leaf in self.leaves.values() if leaf.state is not LeafState.DONE]


class StagingArea:
    """The staging directory of one partition: its checkpoint and spool files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def load(self, partition_key: str, plan_key: str) -> Checkpoint | None:
        path = self.directory / CHECKPOINT_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if data.get("partition_key") != partition_key or data.get("plan_key") != plan_key:
            return None
        leaves = {}
        for raw in data["leaves"]:
            leaf = LeafProgress(**{**raw, "state": LeafState(raw["state"])})
            if all((self.directory / name).exists() for name in leaf.spool_files):
                leaves[leaf.leaf_id] = leaf
            else:  # a spool file went missing: page that leaf again
                leaves[leaf.leaf_id] = LeafProgress(window_key=leaf.window_key, channel_id=leaf.channel_id)
        return Checkpoint(partition_key, plan_key, leaves, resumed=True)

    def save(self, checkpoint: Checkpoint) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "partition_key": checkpoint.partition_key,
            "plan_key": checkpoint.plan_key,
            "leaves": [asdict(leaf) for leaf in checkpoint.leaves.values()],
        }
        tmp = self.directory / f".{CHECKPOINT_FILE}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, self.directory / CHECKPOINT_FILE)

    def spool_path(self, name: str) -> Path:
        return self.directory / name

    def discard_unreferenced(self, checkpoint: Checkpoint) -> None:
        """Remove spool and temporary files that no leaf of the checkpoint names (leftovers of a crash)."""
        if not self.directory.exists():
            return
        keep = {name for leaf in checkpoint.leaves.values() for name in leaf.spool_files}
        for path in self.directory.iterdir():
            if path.name != CHECKPOINT_FILE and path.name not in keep:
                path.unlink(missing_ok=True)

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
