"""The model in use as Redis records it, and learned successors that workers take without a restart.

``cw:meta`` holds ``model`` (the id in use, ``store.model_id``), ``model:<id>`` (that model's
JSON file: the worker whose file is in use writes it at start, ``churnwatch learn`` writes each
successor it adopts) and ``learn`` (the learner's last comparison, JSON, adopted or not). One
key, so adoption is one atomic script on a single Redis and on a cluster alike.

Which change a running worker follows (:func:`successor_of`): a model whose file says it was
learned from the chain this worker's model belongs to (``models.model.learned_root``) and that
keeps its vocabulary (``models.model.same_vocabulary``). Anything else recorded in its place is
a take-over (a new file rolled out): the worker stops, as before (``store.ModelReplaced``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from models.model import ChurnModel, learned_root, same_vocabulary

__all__ = ["LEARN_FIELD", "RECORD_PREFIX", "ModelAdopted", "chain_root", "comparison_record", "parse_record",
           "successor_of"]

logger = logging.getLogger(__name__)

RECORD_PREFIX = "model:"
LEARN_FIELD = "learn"



class ModelAdopted(Exception):
    """A learned successor of this worker's model is now the one in use: switch at a cycle boundary."""

    def __init__(self, model_id: str, model: ChurnModel) -> None:
        super().__init__(f"learned model {model_id} adopted")
        self.model_id, self.model = model_id, model


def chain_root(model: ChurnModel, own_id: str) -> str:
    """The id of the file the chain of ``model`` started from: its own id for a file."""
    return learned_root(model) or own_id


def parse_record(text: str | bytes | None) -> ChurnModel | None:
    """A ``model:<id>`` record as a model; None when absent or unreadable (logged)."""
    if not text:
        return None
    try:
        return ChurnModel.from_json(text.decode() if isinstance(text, bytes) else text)
    except (ValueError, TypeError) as exc:
        logger.warning("model record in Redis cannot be read (%s): treated as another model", exc)
        return None


def successor_of(mine: ChurnModel, mine_id: str, recorded: ChurnModel | None) -> bool:
    """May a worker running ``mine`` (id ``mine_id``) switch to ``recorded`` in place?"""
    if recorded is None or learned_root(recorded) is None:
        return False
    return learned_root(recorded) == chain_root(mine, mine_id) and same_vocabulary(mine, recorded)


def comparison_record(data: dict[str, Any]) -> str:
    """The ``learn`` field's JSON (sorted keys: one spelling per content)."""
    return json.dumps(data, sort_keys=True, allow_nan=False)
