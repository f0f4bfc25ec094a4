"""Serving the emulator: on a free loopback port in a background thread (tests, demo) or blocking (CLI)."""

import gc
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from pipelines.emulator.app import create_app
from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.faults import Faults, RequestStats
from pipelines.emulator.store import MessageStore
from pipelines.emulator.workspaces import (
    DEFAULT_ACCESS_KEY,
    EmulatedWorkspace,
    generate_workspaces,
)

STARTUP_TIMEOUT_S = 10.0
LARGE_STORE = 50_000  # messages in all; above this the stores' objects are frozen out of the cyclic GC


def _freeze_if_large(workspaces: Sequence[EmulatedWorkspace]) -> None:
    """Keep full GC passes from re-scanning millions of long-lived message objects (pauses of seconds).

    Collect first, so that no garbage is frozen.
    """
    if sum(len(w.store) for w in workspaces) >= LARGE_STORE:
        gc.collect()
        gc.freeze()


@dataclass
class RunningEmulator:
    """Where a running emulator listens, and handles on its workspaces for the test that started it.

    `access_key`, `workspace_id`, `store`, `faults`, `stats` and `headers` are the first workspace's.
    """

    base_url: str
    workspaces: tuple[EmulatedWorkspace, ...]

    @property
    def access_key(self) -> str:
        return self.workspaces[0].access_key

    @property
    def workspace_id(self) -> str:
        return self.workspaces[0].workspace_id

    @property
    def store(self) -> MessageStore:
        return self.workspaces[0].store

    @property
    def faults(self) -> Faults:
        return self.workspaces[0].faults

    @property
    def stats(self) -> RequestStats:
        return self.workspaces[0].stats

    @property
    def headers(self) -> dict[str, str]:
        """Bird's auth header for the first workspace."""
        return self.workspaces[0].headers

    def workspace(self, workspace_id: str) -> EmulatedWorkspace:
        """The served workspace with this id; KeyError if there is none."""
        for workspace in self.workspaces:
            if workspace.workspace_id == workspace_id:
                return workspace
        raise KeyError(workspace_id)


def _workspaces_to_serve(
    spec: DatasetSpec | None,
    store: MessageStore | None,
    access_key: str | None,
    faults: Faults | None,
    workspaces: Sequence[EmulatedWorkspace] | None,
) -> tuple[EmulatedWorkspace, ...]:
    if workspaces is not None:
        if spec is not None or store is not None or access_key is not None or faults is not None:
            raise ValueError("pass workspaces alone: each carries its own store, access key and faults")
        return tuple(workspaces)
    if store is not None and spec is not None:
        raise ValueError("pass either spec or store, not both")
    return (
        EmulatedWorkspace(
            store if store is not None else MessageStore.generate(spec or DatasetSpec()),
            access_key if access_key is not None else DEFAULT_ACCESS_KEY,
            faults if faults is not None else Faults(),
        ),
    )


@contextmanager
def run_emulator(
    spec: DatasetSpec | None = None,
    *,
    store: MessageStore | None = None,
    access_key: str | None = None,
    faults: Faults | None = None,
    workspaces: Sequence[EmulatedWorkspace] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    **app_options: Any,
) -> Iterator[RunningEmulator]:
    """Serve workspaces with uvicorn in a background thread until the block exits.

    Either one workspace: `store` (or one generated from `spec`) behind `access_key` (default
    `emulator-access-key`) with `faults`; or several: `workspaces`, e.g. `generate_workspaces(spec, 3)`.
    `port=0` picks a free port; `app_options` go to `create_app` (`inclusive_end`, `end_signal`,
    `cross_workspace_status`).
    """
    served = _workspaces_to_serve(spec, store, access_key, faults, workspaces)
    _freeze_if_large(served)
    app = create_app(workspaces=served, **app_options)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="bird-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the emulator did not start on {host}:{port}")
        time.sleep(0.005)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningEmulator(base_url=f"http://{host}:{bound_port}", workspaces=served)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)


def serve(
    *,
    host: str,
    port: int,
    spec: DatasetSpec,
    access_key: str = DEFAULT_ACCESS_KEY,
    faults: Faults | None = None,
    workspaces: int = 1,
) -> None:
    """Generate `workspaces` workspaces from `spec` and serve them until interrupted (for the CLI).

    Workspace 1 is `spec`'s, behind `access_key`; workspace i > 1 has a seed derived from `spec.seed` and the
    key `access_key-i`. Prints every workspace id and key. `faults` is copied into each workspace.
    """
    served = generate_workspaces(spec, workspaces, access_key=access_key, faults=faults)
    _freeze_if_large(served)
    app = create_app(workspaces=served)
    total = sum(len(w.store) for w in served)
    print(f"Bird API emulator: {len(served)} workspace(s), {total} messages, http://{host}:{port}")
    for number, workspace in enumerate(served, start=1):
        print(
            f"  workspace {number}: id {workspace.workspace_id}  access key {workspace.access_key}  "
            f"seed {workspace.store.spec.seed}  {len(workspace.store)} messages"
        )
    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="off")
