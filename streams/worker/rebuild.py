"""A model take-over that rebuilds the state: ``churnwatch worker --take-over-model --rebuild-state``.

Every stored user state holds per-slot counters in the vocabulary of the model in use
(``models.model.same_vocabulary``), so a model that tracks other event types or has other roles
cannot take the states over (``model_record.layout_refusal``: the take-over is refused). With
``--rebuild-state`` the taking-over worker empties the store instead and replays the events topic
under its model, the replay a worker makes after Redis lost its data (``StoreLost``): states,
counters, revenue and indexes are what ``backtest --model`` gives.

Order, so that nothing the old model writes survives: first ``cw:meta`` gets a new incarnation and
the new model in one transaction (running workers then find the store lost: their writes are
refused, and their rebuild's ``Store.connect`` finds another model recorded and they stop, exit
code 3); then every other key of the prefix is unlinked (a bucket's marker with it, so a late write
of an old worker is refused there too); the caller's ``Store.connect`` then marks the buckets with
the new incarnation, as the first worker on an empty store does. Idempotent: once the new model is
recorded there is nothing to rebuild, so a restart with the flag still set is a plain start.
"""

from __future__ import annotations

import logging
import uuid

from streams.worker.model_record import LEARN_FIELD, RECORD_PREFIX, layout_refusal
from streams.worker.store import Store

__all__ = ["rebuild_for_take_over"]

logger = logging.getLogger(__name__)

#: Keys unlinked per call.
_UNLINK_BATCH = 1000


async def rebuild_for_take_over(store: Store) -> int:
    """Empty ``store`` for its model (``store.use_model`` before) if the model in use has another
    vocabulary, or one Redis holds no file of (asked to rebuild, not knowing: rebuilt); the number of
    keys deleted (0: nothing to rebuild, the take-over goes on as usual)."""
    assert store.model_obj is not None, "use_model first"
    found, record, _ = await store.model_record()
    if not found or found == store.model or (record is not None and not layout_refusal(store.model_obj, store.model, found, record)):
        return 0
    meta = store.keys.meta
    pipe = store.client.pipeline(transaction=True)  # one key: one slot on a cluster too
    pipe.hset(meta, mapping={"incarnation": uuid.uuid4().hex[:16], "model": store.model})
    pipe.hdel(meta, "save_index", LEARN_FIELD, RECORD_PREFIX + found)
    await pipe.execute()
    deleted, batch = 0, []
    async for key in store.client.scan_iter(match=f"{store.keys.prefix}:*", count=_UNLINK_BATCH):
        if (key.decode() if isinstance(key, bytes) else key) != meta:
            batch.append(key)
        if len(batch) >= _UNLINK_BATCH:
            deleted, batch = deleted + await _unlink(store, batch), []
    deleted += await _unlink(store, batch)
    why = "which tracks other event types or roles" if record is not None else "whose file Redis does not hold"
    logger.warning("model %s takes over from %s, " + why + ": deleted %s keys of the "
                   "state (prefix %s); the workers rebuild it from the events topic under the new model (docs/OPERATE.md, "
                   "\"Model upgrades\")", store.model, found, deleted, store.keys.prefix)
    return deleted


async def _unlink(store: Store, keys: list[bytes | str]) -> int:
    """UNLINK ``keys``, one command each in one pipeline (on a cluster each goes to its slot's node: queued
    as a plain command, since ClusterPipeline's own ``unlink`` is a multi-key coroutine, not queued)."""
    if not keys:
        return 0
    pipe = store.client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("UNLINK", key)
    return sum(int(n) for n in await pipe.execute())
