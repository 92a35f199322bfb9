"""The model in use as Redis records it, and learned successors that workers take without a restart.

``cw:meta`` holds ``model`` (the id in use, ``store.model_id``), ``model:<id>`` (that model's
JSON file: the worker whose file is in use writes it at start, ``churnwatch learn`` writes each
successor it adopts) and ``learn`` (the learner's last comparison, JSON, adopted or not). One
key, so adoption is one atomic script on a single Redis and on a cluster alike.

Which change a running worker follows (:func:`successor_of`): a model whose file says it was
learned from the chain this worker's model belongs to (``models.model.learned_root``) and that
keeps its vocabulary (``models.model.same_vocabulary``). Anything else recorded in its place is
a take-over (a new file rolled out): the worker stops, as before (``store.ModelReplaced``).
A take-over by a model whose vocabulary differs is refused (:func:`layout_refusal`): every stored
state holds counters per slot of the recorded model's vocabulary, and the new model would read
them as its own slots. Readers (``churnwatch score``, ``top``, the console) score with the model
recorded in use (:func:`reader_model`), so they say what the alerts say.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from models.model import LEARNED_KEY, ChurnModel, learned_root, same_vocabulary, vocabulary_key
from models.vocabulary import DEFAULT_ROLES

__all__ = ["LEARN_FIELD", "RECORD_PREFIX", "ModelAdopted", "VocabularyKey", "chain_root", "comparison_record", "layout_refusal",
           "learned_after", "parse_record", "reader_model", "record_vocabulary", "successor_of"]

logger = logging.getLogger(__name__)

RECORD_PREFIX = "model:"
LEARN_FIELD = "learn"
#: A model's vocabulary as the layout check compares it (``models.model.vocabulary_key``).
VocabularyKey = tuple[object, ...]


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


def record_vocabulary(text: str | bytes | None) -> VocabularyKey | None:
    """The vocabulary of a ``model:<id>`` record read leniently: the fields the state's layout
    depends on (``tracked_types``, ``roles``, ``event_types``) as they are, without the checks a
    model file gets as it loads; None when absent or when they are not lists and tables of names.

    What a take-over's layout check compares when the record does not load (:func:`parse_record`):
    a record written by an earlier version from a hand-edited file that this version refuses (a
    role name in upper case, a name in two roles) still says which slots and roles the stored
    states were written with, and a fixed file that re-ordered ``negative`` must be refused, not
    waved through with "cannot be checked" (review 10 A6).

    >>> record_vocabulary('{"format": "churnwatch-model/1", "roles": {"purchase": ["Buy"], "cancel": ["buy"]}}') == vocabulary_key((), {"purchase": ["Buy"], "cancel": ["buy"]}, {})
    True
    >>> record_vocabulary('{"roles": ["purchase"]}') is None and record_vocabulary("not json") is None
    True
    """
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    tracked, roles, renames = data.get("tracked_types", []), data.get("roles", DEFAULT_ROLES), data.get("event_types", {})
    names = lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v)  # noqa: E731
    if not (names(tracked) and isinstance(roles, dict) and all(names(v) for v in roles.values()) and isinstance(renames, dict)
            and all(isinstance(v, str) for v in renames.values())):
        return None
    return vocabulary_key(tracked, roles, renames)


def _vocabulary(model: ChurnModel | VocabularyKey) -> VocabularyKey:
    return model if isinstance(model, tuple) else vocabulary_key(model.tracked_types, model.roles, model.event_types)


def successor_of(mine: ChurnModel, mine_id: str, recorded: ChurnModel | None) -> bool:
    """May a worker running ``mine`` (id ``mine_id``) switch to ``recorded`` in place?"""
    if recorded is None or learned_root(recorded) is None:
        return False
    return learned_root(recorded) == chain_root(mine, mine_id) and same_vocabulary(mine, recorded)


def learned_after(mine: ChurnModel, mine_id: str, recorded: ChurnModel | None, records: Mapping[str, ChurnModel]) -> bool:
    """Was ``recorded`` (the model in use) learned after ``mine``, down its chain? Then a take-over by
    ``mine`` rolls back what ``churnwatch learn`` adopted since: what a worker restarted with
    ``--take-over-model`` still set would do (review 4 #6g). True when ``recorded`` is a learned
    successor of ``mine`` (:func:`successor_of`: the same chain and vocabulary) and ``mine`` is the
    file the chain started from, or a model on its ``base`` links as far as Redis holds their files
    (``records``, id -> model: ``lua/adopt_model.lua`` keeps the predecessor and the root), or, past
    the files Redis dropped, a learned model of the chain whose data ended no later.

    >>> from models.model import ChurnModel
    >>> def learned(base, root, end):
    ...     return ChurnModel(version=f"l{end}", training={"learned": {"base": base, "root": root, "data_end_ms": end}})
    >>> root, l1, l2, l3 = ChurnModel(), learned("r@1", "r@1", 1), learned("l1@1", "r@1", 2), learned("l2@1", "r@1", 3)
    >>> kept = {"r@1": root, "l2@1": l2}
    >>> [learned_after(m, i, l3, kept) for m, i in ((root, "r@1"), (l2, "l2@1"), (l1, "l1@1"))]
    [True, True, True]
    >>> learned_after(l1, "l1@1", l3, {"r@1": root})  # l2's file dropped: l1's data ended before l3's
    True
    >>> [learned_after(l3, "l3@1", l2, kept), learned_after(ChurnModel(version="x"), "x@1", l3, kept)]
    [False, False]
    """
    if recorded is None or not successor_of(mine, mine_id, recorded):
        return False
    if learned_root(mine) is None:
        return True  # successor_of: the chain of ``recorded`` started from this very file
    cur: ChurnModel | None = recorded
    seen: set[str] = set()
    while cur is not None:
        base = str(_learned(cur).get("base") or "")
        if base == mine_id:
            return True
        if not base or base in seen:
            return False  # the whole chain is known, and ``mine`` is not on it
        seen.add(base)
        cur = records.get(base)
    mine_end, end = _learned(mine).get("data_end_ms"), _learned(recorded).get("data_end_ms")
    return isinstance(mine_end, int) and isinstance(end, int) and mine_end <= end


def _learned(model: ChurnModel) -> Mapping[str, Any]:
    """A learned model's ``training["learned"]`` (``models.model.LEARNED_KEY``), {} for a file."""
    learned = model.training.get(LEARNED_KEY) if isinstance(model.training, Mapping) else None
    return learned if isinstance(learned, Mapping) else {}


def reader_model(file_model: ChurnModel, file_id: str, found: str, record: ChurnModel | None) -> tuple[ChurnModel, str]:
    """What a reader of the live state scores with, and a note ("" when none): the model Redis
    records in use (``found``, its file ``record``: a take-over's file or a learned successor),
    so ``score``, ``top`` and the console say what the workers' alerts say; the reader's own file
    (``CHURNWATCH_MODEL_PATH``) only before any worker recorded one, or when it is that model. A
    recorded model whose file cannot be loaded is said, not silently replaced by the reader's.

    >>> from models.model import ChurnModel
    >>> mine, theirs = ChurnModel(), ChurnModel(version="trained-1")
    >>> [m.version for m, _ in (reader_model(mine, "a@1", "", None), reader_model(mine, "a@1", "t@2", theirs))]
    ['builtin-1', 'trained-1']
    >>> reader_model(mine, "a@1", "t@2", None)[1]
    "Redis records model t@2 in use but not its file (cw:meta field 'model:t@2'): scoring with this process's model a@1 (CHURNWATCH_MODEL_PATH), which may differ from the workers' alerts"
    """
    if not found or found == file_id:
        return file_model, ""
    if record is not None:
        return record, ""
    return file_model, (f"Redis records model {found} in use but not its file (cw:meta field '{RECORD_PREFIX}{found}'): "
                        f"scoring with this process's model {file_id} (CHURNWATCH_MODEL_PATH), which may differ from "
                        f"the workers' alerts")


def layout_refusal(mine: ChurnModel, mine_id: str, found: str, record: ChurnModel | VocabularyKey | None, prefix: str = "cw") -> str:
    """Why a take-over by ``mine`` must not start on states written under the recorded model
    ``found`` (its file ``record``, or the record's vocabulary read leniently when it does not
    load: :func:`record_vocabulary`), or "": every user's state holds its per-slot counters in the
    recorded model's vocabulary (``tracked_types``, roles: ``models.model.same_vocabulary``), and
    ``mine`` would read them as its own slots (health, actions, reasons off for weeks, and not
    what a replay under ``mine`` gives). Unknown (no record) is not refused: the caller warns.

    >>> from models.model import ChurnModel
    >>> layout_refusal(ChurnModel(risk_intercept=-2.0), "b@2", "a@1", ChurnModel())
    ''
    >>> print(layout_refusal(ChurnModel(tracked_types=("view",)), "b@2", "a@1", ChurnModel()))  # doctest: +ELLIPSIS
    model b@2 tracks other event types, roles or renames than the model a@1 in use, ... --rebuild-state ... keys under 'cw:', ...
    """
    if not found or found == mine_id or record is None or _vocabulary(mine) == _vocabulary(record):
        return ""
    return (f"model {mine_id} tracks other event types, roles or renames than the model {found} in use, whose slots every "
            f"stored user state holds: a take-over would read them under the new names. Rebuild the state under the "
            f"new model instead: start this worker with --take-over-model --rebuild-state (CHURNWATCH_MODEL_REBUILD=true: "
            f"it deletes the state's keys under '{prefix}:', the old workers stop and the workers replay the events topic; "
            f"docs/OPERATE.md, \"Model upgrades\")")


def comparison_record(data: dict[str, Any]) -> str:
    """The ``learn`` field's JSON (sorted keys: one spelling per content)."""
    return json.dumps(data, sort_keys=True, allow_nan=False)
