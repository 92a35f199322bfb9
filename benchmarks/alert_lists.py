"""Redis bytes of the console's alert lists (streams/worker/alert_log.py) per alerted user.

Real engine alerts: a simulated population advanced by ``models.engine.advance``; each user's
alerts worth a call become the entries the worker logs, copied to N user ids and written through
``streams.worker.store.Store.write`` (the fenced ``write_batch.lua`` the worker runs), no states.
"""

from __future__ import annotations

import collections
from typing import Any, Sequence


from benchmarks.memory import CHUNK_USERS, memory_growth
from models.engine import advance
from models.events import Event
from models.model import ChurnModel, load_model
from streams.settings import Settings
from streams.worker.keys import locate
from streams.worker.store import BucketWrite, Store

__all__ = ["alert_lists_from", "measure_alert_lists"]


def alert_lists_from(events: Sequence[Event], end_ms: int, model: ChurnModel | None = None) -> list[list[tuple[str, bytes]]]:
    """Per simulated user with at least one alert worth a call: its (alert id, entry) list as the
    worker appends it, oldest first (real engine alerts and reasons)."""
    from streams.worker.alert_log import entry, logged_kind

    model = model or load_model()
    by_user: dict[str, list[Event]] = collections.defaultdict(list)
    for ev in events:
        by_user[ev.user_id].append(ev)
    out = []
    for uid, evs in by_user.items():
        logged = [a.to_dict() for a in advance(uid, None, evs, end_ms, model).alerts]
        rows = [(str(d["alert_id"]), entry(d)) for d in logged if logged_kind(d)]
        if rows:
            out.append(rows)
    return out


async def _write_alert_lists(settings: Settings, lists: Sequence[Sequence[tuple[str, bytes]]], users: int, topic: str) -> None:
    store = Store(settings)
    await store.connect()
    field = f"{topic}:0"
    try:
        for chunk, start in enumerate(range(0, users, CHUNK_USERS)):
            writes: dict[int, BucketWrite] = {}
            for i in range(start, min(users, start + CHUNK_USERS)):
                uid = f"user-{i:08d}"
                b, g = locate(uid, store.buckets, store.groups)
                w = writes.get(b)
                if w is None:
                    w = writes[b] = BucketWrite(b, [(field, str(chunk - 1) if chunk else "", str(chunk))])
                w.alerts.extend((g, uid, aid, e) for aid, e in lists[i % len(lists)])
            assert await store.write(list(writes.values()), f"alerts-{chunk}") == []
    finally:
        await store.close()


def measure_alert_lists(redis_url: str, lists: Sequence[Sequence[tuple[str, bytes]]], users: int, *,
                        topic: str = "activity-events") -> dict[str, Any]:
    """Write the alert lists of ``users`` alerted users (``Store.write``, lua/write_batch.lua) into a
    flushed Redis; bytes per alerted user and per entry (the lists alone: no states are written).
    Each user's alerts come in one write, as a replay would bring them."""
    from streams.worker.alert_log import ALERT_LOG_CAP

    grown, _ = memory_growth(redis_url, lambda settings: _write_alert_lists(settings, lists, users, topic))
    kept = [min(len(x), ALERT_LOG_CAP) for x in lists]
    entries = sum(kept[i % len(lists)] for i in range(users))
    sizes = [len(e) for x in lists for _, e in x[-ALERT_LOG_CAP:]]
    return {
        "alerted_users": users,
        "simulated_lists": len(lists),
        "entries_per_alerted_user_mean / max": f"{entries / users:.2f} / {max(kept)}",
        "entry_bytes_mean": round(sum(sizes) / len(sizes)),
        "bytes_per_alerted_user": round(grown / users),
        "bytes_per_entry (incl. the hash field's share)": round(grown / entries),
    }
