"""Where a user's data lives in Redis: hash-tag bucket, group, and every key name (ARCHITECTURE.md).

Why buckets and groups: every multi-key Lua script must touch one Redis Cluster slot, so all keys
of a bucket share the hash tag ``{b}``; a bucket's users are split further into ``G`` small hashes
so each stays a listpack (``hash-max-listpack-entries``) instead of one huge hashtable.

>>> bucket_of("u1", 64), group_of("u1", 64, 256)
(54, 125)
>>> Keys("cw").users(54, 125)
'cw:{54}:u:125'
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from models.step import due_member
from models.step import locate as _locate

__all__ = ["FAMILIES", "Keys", "bucket_of", "group_of", "locate", "due_member", "parse_due_member", "offset_field",
           "prefix_refusal"]

#: What follows ``<prefix>:`` in a key that is not a bucket's (``<prefix>:{b}:...``): ``Keys.meta``,
#: ``rebuild_lock``, ``progress``, ``reroute`` and ``account_due``. A prefix may not extend another
#: deployment's by one of these (:func:`prefix_refusal`).
FAMILIES = ("meta", "rebuilding", "progress", "reroute", "adue")


def prefix_refusal(prefix: str) -> str:
    """Why ``prefix`` cannot be a deployment's ``key_prefix``, or "". Deployments share one Redis under
    different prefixes, and ``streams.worker.rebuild`` deletes a deployment's keys by prefix, so no key of
    one may be a key of another, nor look like one: ``:`` separates the prefix's parts as it separates
    the key's, a part after the first must not be one of :data:`FAMILIES` (``cw:progress`` would be the
    progress key of ``cw``'s topic ``meta``, and match ``cw``'s deletion), and a prefix holds no hash tag
    (``{`` ``}``: on a Redis Cluster the slot is that of the first ``{...}`` of a key, which must be the
    bucket's), no blank or control character (unreadable in a log, cut by ``redis-cli`` and shell
    scripts), and no empty part. Another prefix that extends this one by another name
    (``cw`` and ``cw:eu``) is fine: its keys all continue with that name, never with ``{`` or a family.

    >>> [prefix_refusal(p) == "" for p in ("cw", "cw:eu", "c?", "cw-prod.1")]
    [True, True, True, True]
    >>> for p in ("", "cw{1}", "cw eu", "cw:", "cw::eu", "cw:progress"):
    ...     print(repr(p), prefix_refusal(p))
    '' is empty
    'cw{1}' holds a hash-tag brace ({ or })
    'cw eu' holds a blank or control character
    'cw:' has an empty part between or around ':'
    'cw::eu' has an empty part between or around ':'
    'cw:progress' has a part after the first named like a key family of a deployment (meta, rebuilding, progress, reroute, adue): its keys would be taken for those of deployment 'cw'
    """
    if not prefix:
        return "is empty"
    if "{" in prefix or "}" in prefix:
        return "holds a hash-tag brace ({ or })"
    if any(c.isspace() or not c.isprintable() for c in prefix):
        return "holds a blank or control character"
    parts = prefix.split(":")
    if not all(parts):
        return "has an empty part between or around ':'"
    for i, part in enumerate(parts[1:], 1):
        if part in FAMILIES:
            return (f"has a part after the first named like a key family of a deployment ({', '.join(FAMILIES)}): its keys "
                    f"would be taken for those of deployment {':'.join(parts[:i])!r}")
    return ""


def locate(user_id: str, buckets: int, groups: int) -> tuple[int, int]:
    """``(bucket, group)`` of a user: ``h = crc32(utf-8)``, ``b = h % B``, ``g = (h // B) % G``
    (``models.step.locate``, compiled with the worker's per-user planning, ``locate_users``)."""
    return _locate(user_id, buckets, groups)


def bucket_of(user_id: str, buckets: int) -> int:
    return zlib.crc32(user_id.encode("utf-8", "surrogatepass")) % buckets


def group_of(user_id: str, buckets: int, groups: int) -> int:
    return (zlib.crc32(user_id.encode("utf-8", "surrogatepass")) // buckets) % groups


def offset_field(topic: str, partition: int) -> str:
    """Field of ``cw:{b}:off`` (and suffix of the due index key) for one partition of a topic."""
    return f"{topic}:{partition}"


class OffsetFields(dict[int, str]):
    """partition -> ``offset_field(topic, partition)``, each built once (on its first lookup): the
    worker names the offset field of every bucket x partition it reads, each cycle.

    >>> names = OffsetFields("ev"); names[3], list(map(names.__getitem__, [3, 4])), len(names)
    ('ev:3', ['ev:3', 'ev:4'], 2)
    """

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic

    def __missing__(self, partition: int) -> str:
        name = self[partition] = offset_field(self.topic, partition)
        return name


def parse_due_member(member: str) -> tuple[int, str]:
    """``due_member`` read back (the store decodes the read script's due lists with it).

    >>> parse_due_member(due_member(7, "a:b"))
    (7, 'a:b')
    """
    group, _, user_id = member.partition(":")
    return int(group), user_id


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix (``settings.key_prefix``)."""

    prefix: str = "cw"

    def tag(self, bucket: int) -> str:
        return f"{self.prefix}:{{{bucket}}}"

    def users(self, bucket: int, group: int) -> str:
        return f"{self.prefix}:{{{bucket}}}:u:{group}"

    def reach(self, bucket: int, group: int) -> str:
        """Save-list index of one user hash's users (ZSET user -> ``store.reach_score``), a listpack
        like the hash it follows (``models.ranking``)."""
        return f"{self.prefix}:{{{bucket}}}:r:{group}"

    def due(self, bucket: int, topic: str, partition: int) -> str:
        return f"{self.prefix}:{{{bucket}}}:due:{offset_field(topic, partition)}"

    def offsets(self, bucket: int) -> str:
        return f"{self.prefix}:{{{bucket}}}:off"

    def stats(self, bucket: int) -> str:
        return f"{self.prefix}:{{{bucket}}}:stats"

    def risk(self, bucket: int) -> str:
        return f"{self.prefix}:{{{bucket}}}:risk"

    def alert_log(self, bucket: int, group: int) -> str:
        """HASH user_id -> the user's last alerts worth a call, newest first (``streams.worker.alert_log``)."""
        return f"{self.prefix}:{{{bucket}}}:al:{group}"

    def erased(self, bucket: int) -> str:
        """HASH ``|salt`` -> a random key, and ``sha1hex(salt + user id)`` -> UTC day, of every user
        ``churnwatch erase`` erased (every bucket holds them all: ``streams.worker.erase``, ``lua/erased.lua``),
        and ``|groups`` -> the bucket's groups holding one of its own. Kept by a state rebuild (``rebuild._ours``)."""
        return f"{self.prefix}:{{{bucket}}}:erased"

    def accounts(self, bucket: int) -> str:
        """Account revenue states (``models.revenue.AccountState``) by account id."""
        return f"{self.prefix}:{{{bucket}}}:acct"

    def account_extras(self, bucket: int) -> str:
        """Per account JSON: last downgrade, open account alert (``streams.worker.revenue``)."""
        return f"{self.prefix}:{{{bucket}}}:ax"

    def account_side(self, bucket: int) -> str:
        """HASH ``<account>`` -> the alert side's ``AccountState`` and ``<account>|held`` -> the copies
        it holds for the watermark (``streams.worker.revenue``, ``streams.worker.watermark``)."""
        return f"{self.prefix}:{{{bucket}}}:aside"

    def members(self, bucket: int, account_id: str) -> str:
        """An account's members (``models.account_health.Member``) by member key."""
        return f"{self.prefix}:{{{bucket}}}:m:{account_id}"

    def member_of(self, bucket: int, group: int) -> str:
        """HASH user id -> the account whose members (``members``) the user is in, written with the member
        in the account's bucket {b}; ``group`` is the *user's* group (``group_of``), so the hashes stay
        small listpacks like the users'. A user's account is found by reading this field of the user's
        group in every bucket (``Store.account_of``)."""
        return f"{self.prefix}:{{{bucket}}}:mof:{group}"

    def account_due(self, topic: str, partition: int) -> str:
        """ZSET account -> next review second, of the accounts whose copies arrive on p (one key
        per partition: only p's owner writes it)."""
        return f"{self.prefix}:adue:{offset_field(topic, partition)}"

    def revenue(self, bucket: int, period: str) -> str:
        """Period counters of the bucket's accounts (``streams.worker.revenue.counter_field``)."""
        return f"{self.prefix}:{{{bucket}}}:rev:{period}"

    def progress(self, topic: str) -> str:
        return f"{self.prefix}:progress:{topic}"

    def align_heads(self, topic: str) -> str:
        """HASH ``<p>`` -> the event time at which p holds other workers' aligned reading (its first
        unread event when held back, else its stream time; NEVER: holds nobody), written by p's
        owner at most once a second (streams/worker/aligned.py). In the ``progress`` family (a topic
        name has no ``:``): no new family for a prefix to avoid, and a rebuild deletes it with the
        progress."""
        return f"{self.prefix}:progress:{topic}:heads"

    def running(self, topic: str) -> str:
        """ZSET worker -> expiry (epoch ms, Redis's clock) of the workers running on ``topic``
        (streams/worker/liveness.py): ``churnwatch relayout`` refuses while one is live. In the
        ``progress`` family, like ``align_heads``; not state: a rebuild leaves it."""
        return f"{self.prefix}:progress:{topic}:running"

    def reroute(self, topic: str) -> str:
        """HASH ``<p>`` -> JSON ``{origin partition: highest origin offset applied}`` (routing.py)."""
        return f"{self.prefix}:reroute:{topic}"

    @property
    def meta(self) -> str:
        return f"{self.prefix}:meta"

    @property
    def rebuild_lock(self) -> str:
        """STRING held (with a TTL the holder refreshes) by the worker deleting the state for a
        take-over (streams/worker/rebuild.py): it expires if that worker dies mid-way."""
        return f"{self.prefix}:rebuilding"
