"""Bird Channels API client: settings, typed queries and models, retries and a shared request budget."""

from pipelines.bird.client import AsyncBirdClient, BirdClient, ClientStats
from pipelines.bird.errors import (
    AuthenticationError,
    BirdAPIError,
    BirdError,
    ConfigError,
    InvalidRequestError,
    NotFoundError,
    PaginationError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from pipelines.bird.models import Channel, Interaction, InteractionList, Message, MessageKey, MessagePage
from pipelines.bird.query import MessageQuery
from pipelines.bird.ratelimit import SharedRateLimiter
from pipelines.bird.retry import RetryPolicy
from pipelines.bird.settings import BirdSettings, Secret

__all__ = [
    "AsyncBirdClient",
    "AuthenticationError",
    "BirdAPIError",
    "BirdClient",
    "BirdError",
    "BirdSettings",
    "Channel",
    "ClientStats",
    "ConfigError",
    "Interaction",
    "InteractionList",
    "InvalidRequestError",
    "Message",
    "MessageKey",
    "MessagePage",
    "MessageQuery",
    "NotFoundError",
    "PaginationError",
    "RateLimitedError",
    "RetryPolicy",
    "Secret",
    "ServerError",
    "SharedRateLimiter",
    "TransportError",
    "UnexpectedResponseError",
    "ValidationError",
]
