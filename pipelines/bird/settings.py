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


def _workspace_uuid(value: object) -> str:
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise ConfigError(f"workspace_id must be a UUID (Bird's workspace IDs are), got {value!r}") from None
