"""Dagster resources: thin wrappers that hand configured plain-Python objects to the assets."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import dagster as dg
import httpx

from pipelines.bird.client import AsyncBirdClient
from pipelines.bird.errors import ConfigError
from pipelines.bird.ratelimit import SharedRateLimiter
from pipelines.bird.retry import RetryPolicy
from pipelines.bird.settings import (
    DEFAULT_API_URL,
    DEFAULT_WORKSPACE_NAME,
    ENV_API_URL,
    ENV_WORKSPACES,
    BirdSettings,
    workspace_env_name,
    workspaces_from_env,
)
from pipelines.ingest.fetch import FetchSettings
from pipelines.ingest.pii import ENV_PII, ENV_PII_KEY, PiiMode, PiiPolicy
from pipelines.lake import Lake, lake_from_env
from warehouse.store import ENV_DATA_DIR, Warehouse, data_dir_from_env  # noqa: F401  (re-exported)

ENV_RATE_LIMIT = "BIRD_RATE_LIMIT_PER_S"
DEFAULT_RATE_LIMIT_PER_S = 40.0


def request_budget_from_env(workspace_name: str | None = None) -> float:
    """$BIRD_RATE_LIMIT_PER_S_<NAME> for a named workspace, else $BIRD_RATE_LIMIT_PER_S, else 40.

    A ValueError with a one-line message if the value is not a positive number.
    """
    names = [workspace_env_name(ENV_RATE_LIMIT, workspace_name)] if workspace_name else []
    for name in [*names, ENV_RATE_LIMIT]:
        configured = os.environ.get(name, "").strip()
        if configured:
            break
    else:
        return DEFAULT_RATE_LIMIT_PER_S
    try:
        budget = float(configured)
    except ValueError:
        raise ValueError(f"{name} must be a number of requests per second, got {configured!r}") from None
    if not budget > 0:
        raise ValueError(f"{name} must be positive, got {configured!r}")
    return budget


class BirdApi(dg.ConfigurableResource):
    """The Bird workspaces to archive and how hard we may call each (one request budget per workspace).

    Empty `access_key`/`workspace_id`: the workspaces of the environment (`workspaces_from_env`), read when
    a run needs them, so the code location loads without secrets.
    """

    access_key: str = ""
    workspace_id: str = ""
    api_url: str = ""  # empty: $BIRD_API_URL, else https://api.bird.com
    rate_limit_per_s: float = 0.0  # 0: $BIRD_RATE_LIMIT_PER_S[_NAME], else 40 (Bird allows 50 GET/s)
    max_attempts: int = 8
    max_connections: int = 64
    timeout_s: float = 30.0

    def workspaces(self) -> list[BirdSettings]:
        """Every workspace this resource archives."""
        try:
            if self.access_key or self.workspace_id:
                found = [BirdSettings(access_key=self.access_key, workspace_id=self.workspace_id)]
            else:
                found = workspaces_from_env()
        except ConfigError as error:
            raise dg.Failure(str(error)) from None
        api_url = self.api_url or os.environ.get(ENV_API_URL, "").strip() or DEFAULT_API_URL
        return [dataclasses.replace(w, api_url=api_url) for w in found]

    def settings(self, workspace_id: str | None = None) -> BirdSettings:
        """One workspace's settings; without an id, the only configured workspace."""
        workspaces = self.workspaces()
        if workspace_id is None:
            if len(workspaces) > 1:
                raise dg.Failure("several workspaces are configured: say which one")
            return workspaces[0]
        for workspace in workspaces:
            if workspace.workspace_id == workspace_id:
                return workspace
        raise dg.Failure(f"workspace {workspace_id} is not configured (see {ENV_WORKSPACES})")

    def request_budget(self, workspace: BirdSettings) -> float:
        """GET requests per second the workspace may use, shared by every run and process."""
        if self.rate_limit_per_s:
            return self.rate_limit_per_s
        try:
            named = workspace.name != DEFAULT_WORKSPACE_NAME  # listed in BIRD_WORKSPACES
            return request_budget_from_env(workspace.name if named else None)
        except ValueError as error:
            raise dg.Failure(str(error)) from None

    @asynccontextmanager
    async def client(
        self, state_dir: Path, workspace_id: str | None = None
    ) -> AsyncIterator[AsyncBirdClient]:
        """A client of one workspace; every request draws on that workspace's budget under `state_dir`."""
        settings = self.settings(workspace_id)
        limiter = SharedRateLimiter(
            state_dir, settings.workspace_id, rate_per_s=self.request_budget(settings)
        )
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
    days_in_flight: int = 4  # days of one run landed at once (a backfill run covers many)
    spool_rows: int = 50_000
    pii: str = (
        ""  # keep | hash | drop; empty: $BIRD_ETL_PII, else keep. The hash key: $BIRD_ETL_PII_KEY only.
    )
    lake_uri: str = ""  # a local path or s3://bucket/prefix; empty: $BIRD_ETL_LAKE, else <root>/lake

    @property
    def root(self) -> Path:
        return Path(self.data_dir).resolve() if self.data_dir else data_dir_from_env()

    @property
    def lake(self) -> Lake:
        """The Parquet lake; an S3 lake's endpoint, region and credentials come from the AWS_* environment."""
        try:
            return Lake.from_uri(self.lake_uri) if self.lake_uri else lake_from_env(self.root)
        except ValueError as error:
            raise dg.Failure(str(error)) from None

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
