"""The per-user work as a Bytewax dataflow: Kafka input, ``key_on`` the user, ``stateful_map``.

Written as Bytewax's docs show keyed state: the Kafka connector's ``input`` operator (confluent-
kafka underneath, default batch size), ``key_on`` the user id, ``stateful_map`` holding each
user's state (in memory; Bytewax snapshots it only when recovery is configured, which is not),
run with ``bytewax.run`` defaults (one worker process). One consumer option through the
connector's ``add_config``: ``fetch.wait.max.ms`` = churnwatch's 10 ms, since Tansu holds every
fetch for (half) the max wait even with data there (librdkafka's default 500).
"""

from __future__ import annotations

import os
import sys

import orjson

from benchmarks.peers.common import Progress, parse_args
from benchmarks.peers.work import update

__all__ = ["main", "build"]


def build(args):  # type: ignore[no-untyped-def]
    import bytewax.operators as op
    from bytewax.connectors.kafka import operators as kop
    from bytewax.dataflow import Dataflow

    progress = Progress(args.events, args.out)
    flow = Dataflow("churn_peer")
    kin = kop.input("kafka_in", flow, brokers=[args.bootstrap], topics=[args.topic], tail=True,
                     add_config={"fetch.wait.max.ms": "10"})
    events = op.map("decode", kin.oks, lambda msg: orjson.loads(msg.value))
    keyed = op.key_on("by_user", events, lambda ev: ev["user_id"])

    def fold(state, ev):  # type: ignore[no-untyped-def]
        state = update(state, ev["type"], ev["ts"])
        if progress.tick(ev["user_id"]):
            os._exit(0)  # the figure is written; shutdown is not measured
        return state, state["score"]

    scores = op.stateful_map("fold", keyed, fold)
    op.inspect("sink", scores, lambda step_id, item: None)
    return flow


def main(argv: list[str] | None = None) -> int:
    args = parse_args("peers.bytewax_flow", argv)
    from datetime import timedelta

    from bytewax.run import cli_main

    # What ``python -m bytewax.run module:flow`` does with its defaults (no recovery).
    cli_main(build(args), workers_per_process=1, epoch_interval=timedelta(seconds=10))
    return 0


if __name__ == "__main__":
    sys.exit(main())
