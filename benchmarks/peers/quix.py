"""The per-user work in Quix Streams: a StreamingDataFrame with a stateful ``apply``.

Written as Quix Streams' docs show custom per-key state: ``sdf.apply(fn, stateful=True)``, the
function reading and writing ``state`` (its RocksDB store, with the default changelog topic), the
message key (the user id) being the state key. Defaults otherwise (at-least-once, commit every
5 s, JSON deserialiser), reading the topic from the beginning. One consumer option, documented
as a pass-through (``consumer_extra_config``): ``fetch.wait.max.ms`` = churnwatch's 10 ms, since
Tansu holds every fetch for (half) the max wait even with data there (librdkafka's default 500).
"""

from __future__ import annotations

import os
import sys

from benchmarks.peers.common import Progress, parse_args
from benchmarks.peers.work import update

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args("peers.quix", argv)
    from quixstreams import Application

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=str(args.state_dir),
        loglevel="WARNING",
        consumer_extra_config={"fetch.wait.max.ms": 10},
    )
    topic = app.topic(args.topic, value_deserializer="json", key_deserializer="str")
    progress = Progress(args.events, args.out)

    def fold(ev: dict, state) -> dict:  # type: ignore[no-untyped-def, type-arg]
        user = ev["user_id"]
        new = update(state.get("user"), ev["type"], ev["ts"])
        state.set("user", new)
        if progress.tick(user):
            os._exit(0)  # the figure is written; shutdown is not measured
        return new

    sdf = app.dataframe(topic)
    sdf = sdf.apply(fold, stateful=True)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
