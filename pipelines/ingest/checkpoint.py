"""Per-partition fetch progress, so a run that died resumes mid-window instead of starting the day again.

The checkpoint of a partition lives in its staging directory beside the spool files it names. It records the
leaf windows of the fan-out and, for each, how far paging got: the spool segments landed and the page token
that follows them. It is rewritten atomically after every change that matters for a resume, and it is what
commits a spool file: a file no checkpoint names (a writer that died) is deleted on resume.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import msgspec

CHECKPOINT_FILE = "checkpoint.json"


class LeafState(StrEnum):
    PENDING = "pending"
    PAGING = "paging"
    DONE = "done"


class Segment(msgspec.Struct, frozen=True, array_like=True):
    """Rows of one leaf in a spool file: the file's row group `row_group` (a file holds many leaves)."""

    file: str
    row_group: int


@dataclass
class LeafProgress:
    """One leaf of the fan-out: a channel (or the whole workspace) over one sub-window."""

    window_key: str
    channel_id: str | None = None
    state: LeafState = LeafState.PENDING
    next_token: str | None = None
    pages: int = 0
    rows: int = 0
    segments: list[Segment] = field(default_factory=list)
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


@dataclass
class _Saved:
    """The checkpoint file: what a resume needs."""

    partition_key: str
    plan_key: str
    leaves: list[LeafProgress]


class StagingArea:
    """The staging directory of one partition: its checkpoint and spool files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def load(self, partition_key: str, plan_key: str) -> Checkpoint | None:
        path = self.directory / CHECKPOINT_FILE
        try:
            saved = msgspec.json.decode(path.read_bytes(), type=_Saved)
        except (OSError, msgspec.DecodeError):
            return None
        if saved.partition_key != partition_key or saved.plan_key != plan_key:
            return None
        leaves = {}
        for leaf in saved.leaves:
            if all((self.directory / segment.file).exists() for segment in leaf.segments):
                leaves[leaf.leaf_id] = leaf
            else:  # a spool file went missing: page that leaf again
                leaves[leaf.leaf_id] = LeafProgress(window_key=leaf.window_key, channel_id=leaf.channel_id)
        return Checkpoint(partition_key, plan_key, leaves, resumed=True)

    def save(self, checkpoint: Checkpoint) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        saved = _Saved(checkpoint.partition_key, checkpoint.plan_key, list(checkpoint.leaves.values()))
        tmp = self.directory / f".{CHECKPOINT_FILE}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(msgspec.json.encode(saved))
        os.replace(tmp, self.directory / CHECKPOINT_FILE)

    def spool_path(self, name: str) -> Path:
        return self.directory / name

    def discard_unreferenced(self, checkpoint: Checkpoint) -> None:
        """Remove spool and temporary files that no leaf of the checkpoint names (leftovers of a crash)."""
        if not self.directory.exists():
            return
        keep = {segment.file for leaf in checkpoint.leaves.values() for segment in leaf.segments}
        for path in self.directory.iterdir():
            if path.name != CHECKPOINT_FILE and path.name not in keep:
                path.unlink(missing_ok=True)

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
