"""What every console handler needs: settings, the store, the model, the owners, the stream time."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

from models.model import ChurnModel, load_model
from streams.console.data import Owners, stream_time_ms
from streams.settings import Settings
from streams.worker.store import Store

__all__ = ["Deps", "Unavailable", "REDIS_DOWN"]

logger = logging.getLogger(__name__)

#: Redis errors that make a page or an API call answer 503 instead of a traceback.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


#: How often the console looks which model the workers run (seconds).
MODEL_CHECK_S = 5.0


class Unavailable(RuntimeError):
    """No worker has written state yet (no progress in Redis): HTTP 503, and a page that says so."""


@dataclass
class Deps:
    settings: Settings
    store: Store
    model: ChurnModel
    owners: Owners = field(default_factory=Owners)
    file_model: ChurnModel | None = None  # the model file; ``model`` follows the model Redis records in use
    model_note: str = ""  # why ``model`` is not the one in use ("" when it is): every page shows it
    file_note: str = ""  # CHURNWATCH_MODEL_PATH names another model than ``model``, the one in use ("" when not)
    _model_shown: tuple[ChurnModel, str] | None = None  # ``model`` and its id (``model_info``: hashed once per model)
    _model_checked: float = 0.0  # monotonic time of the last look at the model in use
    _told_file: bool = False  # the INFO that CHURNWATCH_MODEL_PATH is not the model in use was logged

    @classmethod
    def from_settings(cls, settings: Settings) -> "Deps":
        model = load_model(settings.model_path or None)
        return cls(settings, Store(settings, reconnect_once=True), model, Owners(settings), file_model=model)

    async def check_model(self) -> None:
        """Take the model the workers run (``now_ms``, and once at start: the layout check stays with
        the first page); the first time a ``CHURNWATCH_MODEL_PATH``
        turns out not to be it, one INFO line as the CLI's (``streams.views.file_not_used``)."""
        from streams.views import file_not_used

        self.model, note = await self.store.model_in_use(self.file_model)
        if note and note != self.model_note:
            logger.warning("%s", note)
        self.model_note = note
        not_used = not note and self.settings.model_path and self.model is not self.file_model
        self.file_note = file_not_used(self.settings, self.model) if not_used else ""
        if self.file_note and not self._told_file:
            self._told_file = True
            logger.info("%s", self.file_note)

    def model_info(self) -> dict[str, Any]:
        """The ``model`` of the JSON answers that score (``api.py``; review 4 #6d): ``id`` of the model the
        scores come from, ``in_use`` whether that is the model Redis records in use (false: its file
        cannot be loaded, and the console scores with its own), ``note`` what a page says about it or why
        the console's ``CHURNWATCH_MODEL_PATH`` is not it (null: nothing to say). An API client sees what
        the pages and the log say, not only the numbers."""
        from streams.worker.store import model_id

        if self._model_shown is None or self._model_shown[0] is not self.model:
            self._model_shown = (self.model, model_id(self.model))
        return {"id": self._model_shown[1], "in_use": not self.model_note, "note": self.model_note or self.file_note or None}

    async def now_ms(self) -> int:
        """The stream time, as ``churnwatch score`` uses it; ``Unavailable`` before any progress.
        Every ``MODEL_CHECK_S`` it also looks which model the workers run (recorded in Redis: a
        take-over's file, a learned successor adopted by ``churnwatch learn``), so the pages score
        as the workers do; when that model cannot be loaded, ``model_note`` says so (logged once)."""
        if self.file_model is not None and time.monotonic() - self._model_checked >= MODEL_CHECK_S:
            self._model_checked = time.monotonic()
            await self.check_model()
            from streams.views import layout_mismatch

            wrong = await layout_mismatch(self.store)
            if wrong:  # a page over the wrong keys would be a wrong list, not an empty one
                self._model_checked = 0.0
                raise Unavailable(wrong)
        now = await stream_time_ms(self.store, self.settings)
        if now <= 0:
            raise Unavailable(f"no progress for topic {self.settings.topic_events!r} in Redis yet: has a worker processed any events?")
        return now
