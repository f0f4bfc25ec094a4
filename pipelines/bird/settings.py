"""Connection settings for the Bird Channels API, resolved at call time and never at import.

The access key is wrapped in `Secret` so that it cannot leak through a repr, a log line or an exception: the
only way to read it is `Secret.reveal()`, called once when the HTTP client builds its headers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import httpx

from pipelines.bird.errors import ConfigError

DEFAULT_API_URL: Final = "https://api.bird.com"
ENV_API_URL: Final = "BIRD_API_URL"
ENV_ACCESS_KEY: Final = "BIRD_ACCESS_KEY"
ENV_WORKSPACE_ID: Final = "BIRD_WORKSPACE_ID"
ENV_WORKSPACES: Final = "BIRD_WORKSPACES"
DEFAULT_WORKSPACE_NAME: Final = "default"


class Secret:
    """A string that shows as `'**********'` everywhere except through `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError("the Bird access key is empty")
        self._value = value.strip()

    def reveal(self) -> str:
        """The secret itself: call only where it is sent, never where it could be printed."""
        return self._value

    def __str__(self) -> str:
        return "**********"

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, kw_only=True)
class BirdSettings:
    """Where and as whom to call Bird: base URL, access key and the workspace every path is under."""

    access_key: Secret
    workspace_id: str
    api_url: str = DEFAULT_API_URL
    name: str = DEFAULT_WORKSPACE_NAME  # the workspace's short name in $BIRD_WORKSPACES (env-var suffixes)

    def __post_init__(self) -> None:
        if isinstance(self.access_key, str):
            object.__setattr__(self, "access_key", Secret(self.access_key))
        if not isinstance(self.access_key, Secret):
            raise ConfigError("access_key must be a Secret or a non-empty string")
        object.__setattr__(self, "workspace_id", _workspace_uuid(self.workspace_id))
        url = httpx.URL(self.api_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"api_url must be an http(s) URL, got {self.api_url!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BirdSettings:
        """Read BIRD_API_URL (optional), BIRD_ACCESS_KEY, BIRD_WORKSPACE_ID now; missing: ConfigError."""
        env = os.environ if environ is None else environ
        missing = [name for name in (ENV_ACCESS_KEY, ENV_WORKSPACE_ID) if not env.get(name, "").strip()]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} not set: export them or fill .env (see .env.example)")
        return cls(
            access_key=Secret(env[ENV_ACCESS_KEY]),
            workspace_id=env[ENV_WORKSPACE_ID],
            api_url=env.get(ENV_API_URL, "").strip() or DEFAULT_API_URL,
        )


def workspaces_from_env(environ: Mapping[str, str] | None = None) -> list[BirdSettings]:
    """Every workspace to archive, each with its own access key.

    $BIRD_WORKSPACES lists them as `name=workspace-uuid` pairs separated by commas; workspace NAME's key is
    read from $BIRD_ACCESS_KEY_NAME (upper case). Unset: the one workspace of BIRD_WORKSPACE_ID and
    BIRD_ACCESS_KEY. A malformed list or a missing key: ConfigError naming what to set.
    """
    env = os.environ if environ is None else environ
    listed = env.get(ENV_WORKSPACES, "").strip()
    if not listed:
        return [BirdSettings.from_env(env)]
    api_url = env.get(ENV_API_URL, "").strip() or DEFAULT_API_URL
    workspaces: dict[str, BirdSettings] = {}
    for item in listed.split(","):
        name, separator, workspace_id = (part.strip() for part in item.partition("="))
        if not separator or not name.isidentifier() or not workspace_id:
            raise ConfigError(
                f"{ENV_WORKSPACES} must list name=workspace-uuid pairs, separated by commas; "
                f"got {item.strip()!r}"
            )
        key_name = workspace_env_name(ENV_ACCESS_KEY, name)
        if not env.get(key_name, "").strip():
            raise ConfigError(f"{key_name} not set: the access key of workspace {name!r} in {ENV_WORKSPACES}")
        settings = BirdSettings(
            access_key=Secret(env[key_name]), workspace_id=workspace_id, api_url=api_url, name=name
        )
        if settings.workspace_id in {w.workspace_id for w in workspaces.values()} or name in workspaces:
            raise ConfigError(f"{ENV_WORKSPACES} lists workspace {name!r} ({workspace_id}) twice")
        workspaces[name] = settings
    return list(workspaces.values())


def workspace_env_name(variable: str, workspace_name: str) -> str:
    """The per-workspace variant of a variable: BIRD_ACCESS_KEY + eu -> BIRD_ACCESS_KEY_EU."""
    return f"{variable}_{workspace_name.upper()}"


def _workspace_uuid(value: object) -> str:
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise ConfigError(f"workspace_id must be a UUID (Bird's workspace IDs are), got {value!r}") from None
