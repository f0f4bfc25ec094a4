"""Dagster resources: thin wrappers that hand configured plain-Python objects to the assets."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import dagster as dg
import httpx

from pipelines.bird.client import AsyncBirdClient
from pipelines.bird.ratelimit import SharedRateLimiter
from pipelines.bird.retry import RetryPolicy
from pipelines.bird.settings import DEFAULT_API_URL, ENV_API_URL, BirdSettings
from pipelines.ingest.fetch import FetchSettings
from pipelines.ingest.pii import ENV_PII, ENV_PII_KEY, PiiMode, PiiPolicy
from pipelines.lake import Lake
from warehouse.store import ENV_DATA_DIR, Warehouse, data_dir_from_env  # noqa: F401  (re-exported)

ENV_RATE_LIMIT = "BIRD_RATE_LIMIT_PER_S"
DEFAULT_RATE_LIMIT_PER_S = 40.0


def request_budget_from_env() -> float:
    """$BIRD_RATE_LIMIT_PER_S (default 40); a ValueError with a one-line message if not a positive number."""
    configured = os.environ.get(ENV_RATE_LIMIT, "").strip()
    try:
        budget = float(configured) if configured else DEFAULT_RATE_LIMIT_PER_S
    except ValueError:
        raise ValueError(
            f"{ENV_RATE_LIMIT} must be a number of requests per second, got {configured!r}"
        ) from None
    if not budget > 0:
        raise ValueError(f"{ENV_RATE_LIMIT} must be positive, got {configured!r}")
    return budget


class BirdApi(dg.ConfigurableResource):
    """The Bird workspace to archive and how hard we may call it (one request budget per workspace)."""

    access_key: str
    workspace_id: str
    api_url: str = ""  # empty: $BIRD_API_URL, else https://api.bird.com
    rate_limit_per_s: float = 0.0  # 0: $BIRD_RATE_LIMIT_PER_S, else 40 (Bird allows 50 GET/s per workspace)
    max_attempts: int = 8
    max_connections: int = 64
    timeout_s: float = 30.0

    def settings(self) -> BirdSettings:
        api_url = self.api_url or os.environ.get(ENV_API_URL, "").strip() or DEFAULT_API_URL
        return BirdSettings(access_key=self.access_key, workspace_id=self.workspace_id, api_url=api_url)

    def request_budget(self) -> float:
        """GET requests per second this workspace may use, shared by every run and process."""
        if self.rate_limit_per_s:
            return self.rate_limit_per_s
        try:
            return request_budget_from_env()
        except ValueError as error:
            raise dg.Failure(str(error)) from None

    @asynccontextmanager
    async def client(self, state_dir: Path) -> AsyncIterator[AsyncBirdClient]:
        """A client whose every request draws on the workspace's shared budget under `state_dir`."""
        settings = self.settings()
        limiter = SharedRateLimiter(state_dir, settings.workspace_id, rate_per_s=self.request_budget())
        async with AsyncBirdClient(
            settings,
            limiter=limiter,
            retry=RetryPolicy(max_attempts=self.max_attempts),
            timeout=httpx.Timeout(self.timeout_s, connect=10.0),
            max_connections=self.max_connections,
        ) as client:
            yield client


class Archive(dg.ConfigurableResource):
    """Where the archive lives and how partitions are fanned out."""

    data_dir: str = ""
    source: str = "workspace"  # "workspace": the workspace list; "channels": one list per channel
    platforms: list[str] = []  # noqa: RUF012  (pydantic copies defaults) with source="channels": these platforms only
    initial_parts: int = 8
    leaf_concurrency: int = 32
    spool_rows: int = 20_000
    pii: str = (
        ""  # keep | hash | drop; empty: $BIRD_ETL_PII, else keep. The hash key: $BIRD_ETL_PII_KEY only.
    )

    @property
    def root(self) -> Path:
        return Path(self.data_dir).resolve() if self.data_dir else data_dir_from_env()

    @property
    def lake(self) -> Lake:
        return Lake(self.root / "lake")

    @property
    def staging_root(self) -> Path:
        return self.root / "staging"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.root)

    def fetch_settings(self) -> FetchSettings:
        if self.source not in ("workspace", "channels"):
            raise dg.Failure(f"archive source must be 'workspace' or 'channels', got {self.source!r}")
        return FetchSettings(
            source=self.source,  # type: ignore[arg-type]
            initial_parts=self.initial_parts,
            leaf_concurrency=self.leaf_concurrency,
            spool_rows=self.spool_rows,
        )

    def pii_policy(self) -> PiiPolicy:
        """The PII policy; its secret key is read from the environment only, never from config."""
        configured = self.pii or os.environ.get(ENV_PII, "").strip() or PiiMode.KEEP.value
        try:
            mode = PiiMode(configured)
        except ValueError:
            raise dg.Failure(f"pii must be one of keep, hash, drop; got {configured!r}") from None
        try:
            return PiiPolicy(mode, os.environ.get(ENV_PII_KEY))
        except ValueError as error:
            raise dg.Failure(str(error)) from None
