"""The workspaces one emulator serves: each a store behind its own access key, with its own faults and stats.

Bird scopes an access key by its policies; the emulator gives each key exactly one workspace. A key is
refused (403) on another served workspace's routes, and every workspace has its own request budget, its own
fault switches and its own request stats (docs/emulator.md, "Several workspaces").
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.faults import Faults, RequestStats
from pipelines.emulator.store import MessageStore

DEFAULT_ACCESS_KEY = "emulator-access-key"


@dataclass
class EmulatedWorkspace:
    """One served workspace and its handles: the store (clock, data), its key, its faults and its stats."""

    store: MessageStore
    access_key: str = DEFAULT_ACCESS_KEY
    faults: Faults = field(default_factory=Faults)
    stats: RequestStats = field(default_factory=RequestStats)

    @property
    def workspace_id(self) -> str:
        return self.store.workspace_id

    @property
    def headers(self) -> dict[str, str]:
        """Bird's auth header for this workspace's key."""
        return {"Authorization": f"AccessKey {self.access_key}"}


def workspace_access_key(index: int, base: str = DEFAULT_ACCESS_KEY) -> str:
    """The key of workspace `index` (0-based): `base`, then `base-2`, `base-3`, ..."""
    return base if index == 0 else f"{base}-{index + 1}"


def generate_workspaces(
    spec: DatasetSpec,
    n: int,
    *,
    access_key: str = DEFAULT_ACCESS_KEY,
    now: datetime | None = None,
    faults: Faults | None = None,
) -> list[EmulatedWorkspace]:
    """`n` workspaces from `spec.for_workspaces(n)`, keyed `access_key`, `access_key-2`, ...

    The first is exactly the workspace of `spec`. `now` pins every store's clock; `faults`, when given, is
    copied into each workspace (same switches, each with its own RNG), so they can be changed one by one.
    """
    return [
        EmulatedWorkspace(
            MessageStore.generate(workspace_spec, now=now),
            workspace_access_key(i, access_key),
            Faults() if faults is None else Faults(**faults.to_dict()),
        )
        for i, workspace_spec in enumerate(spec.for_workspaces(n))
    ]


def check_distinct(workspaces: Sequence[EmulatedWorkspace]) -> None:
    """ValueError unless there is at least one workspace and ids and keys are all distinct."""
    if not workspaces:
        raise ValueError("serve at least one workspace")
    for what, values in (
        ("workspace ids", [w.workspace_id for w in workspaces]),
        ("access keys", [w.access_key for w in workspaces]),
    ):
        if len(set(values)) != len(values):
            raise ValueError(f"each workspace needs its own id and access key; repeated {what}")
