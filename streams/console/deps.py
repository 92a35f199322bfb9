"""What every console handler needs: settings, the store, the model, the owners, the stream time."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

from models.model import ChurnModel, load_model
from streams.console.data import Owners, stream_time_ms
from streams.settings import Settings
from streams.worker.store import Store

__all__ = ["Deps", "Unavailable", "REDIS_DOWN"]

#: Redis errors that make a page or an API call answer 503 instead of a traceback.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class Unavailable(RuntimeError):
    """No worker has written state yet (no progress in Redis): HTTP 503, and a page that says so."""


@dataclass
class Deps:
    settings: Settings
    store: Store
    model: ChurnModel
    owners: Owners = field(default_factory=Owners)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Deps":
        return cls(settings, Store(settings), load_model(settings.model_path or None), Owners(settings))

    async def now_ms(self) -> int:
        """The stream time, as ``churnwatch score`` uses it; ``Unavailable`` before any progress."""
        now = await stream_time_ms(self.store, self.settings)
        if now <= 0:
            raise Unavailable(f"no progress for topic {self.settings.topic_events!r} in Redis yet: has a worker processed any events?")
        return now
