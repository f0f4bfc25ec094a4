"""Serving the emulator: on a free loopback port in a background thread (tests, demo) or blocking (CLI)."""

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from pipelines.emulator.app import create_app
from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.faults import Faults, RequestStats
from pipelines.emulator.store import MessageStore

STARTUP_TIMEOUT_S = 10.0
LARGE_STORE = 50_000  # messages; above this the store's objects are frozen out of the cyclic GC


def _freeze_if_large(store: MessageStore) -> None:
    """Keep full GC passes from re-scanning millions of long-lived message objects (pauses of seconds).

    Collect first, so that no garbage is frozen.
    """
    if len(store) >= LARGE_STORE:
        gc.collect()
        gc.freeze()


@dataclass
class RunningEmulator:
    """Where a running emulator listens, and handles on its state for the test that started it."""

    base_url: str
    access_key: str
    workspace_id: str
    store: MessageStore
    faults: Faults
    stats: RequestStats

    @property
    def headers(self) -> dict[str, str]:
        """Bird's auth header for this emulator."""
        return {"Authorization": f"AccessKey {self.access_key}"}


@contextmanager
def run_emulator(
    spec: DatasetSpec | None = None,
    *,
    store: MessageStore | None = None,
    access_key: str = "emulator-access-key",
    faults: Faults | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    **app_options: Any,
) -> Iterator[RunningEmulator]:
    """Serve a store (or one generated from `spec`) with uvicorn in a background thread until the block exits.

    `port=0` picks a free port; `app_options` go to `create_app` (`inclusive_end`, `end_signal`).
    """
    if store is not None and spec is not None:
        raise ValueError("pass either spec or store, not both")
    store = store if store is not None else MessageStore.generate(spec or DatasetSpec())
    faults = faults if faults is not None else Faults()
    _freeze_if_large(store)
    app = create_app(store, access_key=access_key, faults=faults, **app_options)
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
        yield RunningEmulator(
            base_url=f"http://{host}:{bound_port}",
            access_key=access_key,
            workspace_id=store.workspace_id,
            store=store,
            faults=faults,
            stats=app.state.emulator.stats,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)


def serve(*, host: str, port: int, spec: DatasetSpec, access_key: str, faults: Faults | None = None) -> None:
    """Generate the workspace of `spec` and serve it until interrupted (for the CLI)."""
    store = MessageStore.generate(spec)
    _freeze_if_large(store)
    app = create_app(store, access_key=access_key, faults=faults)
    print(f"Bird API emulator: workspace {store.workspace_id}, {len(store)} messages, http://{host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="off")
