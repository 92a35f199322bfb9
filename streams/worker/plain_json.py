"""A plain event record read by msgspec into a Struct, no dict built: the codec's fast path.

Why: orjson builds a dict per record value (and one for its ``properties``), which the checks
then read by key; building, reading and freeing those dicts were most of the decode phase's
11.4k instructions a record (docs/SCALING.md). :func:`read_plain` (msgspec's JSON decoder into
:class:`PlainRecord`) gives the fields in a small object instead, and
``models.intake.EventReader.read_events`` checks them as it checks orjson's dict.

Why it gives exactly what orjson gives, for every input (tests/test_plain_json.py checks it on
nasty generated records): :func:`read_plain` returns a record only when every value in it is the
one orjson reads, and raises otherwise (the codec then reads that value with orjson, which keeps
every rejection's reason and detail as they were):

- ``forbid_unknown_fields``: msgspec skips an unknown field's value without the checks orjson
  makes on it (``{"p":1e400}`` and invalid UTF-8 inside a skipped string parse), so any other
  field than the record's own sends the value to orjson; so does every record that is not a plain
  event's: a subscription statement's fields, ``currency``, a producer's extra fields. Nothing is
  skipped: every string is decoded by CPython's strict UTF-8 decoder where orjson has its own,
  as strict (both refuse overlong forms, UTF-8 surrogates and lone ``\\ud800`` escapes), so
  non-ASCII records take this path too.
- ``event_id`` required, a string: an event sent without one gets an id derived from everything
  it says (``streams.records.derived_event_id``, over orjson's dict).
- every integer within int64: orjson reads one beyond 64 bits as a float and one beyond a double
  not at all, where msgspec reads an int (``_Int``); floats are both correctly rounded. ``ts`` an
  int or text (a float: orjson), ``amount`` an int, a float or null.
- ``properties`` (read only to derive a missing id: parsed here only to refuse what orjson
  refuses) nests at most three levels (``_Properties``): msgspec's depth limit follows Python's
  recursion limit (or the C stack, on 3.12 and later), orjson's is 1024 levels.

msgspec is a hard dependency (pyproject.toml), as orjson is: a fallback for its absence would be
a second decode path to test for no gain.
"""

from __future__ import annotations

from typing import Annotated, Final, Union

import msgspec
from msgspec.structs import astuple

__all__ = ["PlainRecord", "plain_fields", "read_plain"]

#: An integer orjson reads as an int (it reads -2**63 .. 2**64-1; msgspec's bounds stop at int64).
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Scalar = Union[None, bool, _Int, float, str]
_Nested = Union[_Scalar, list[_Scalar], dict[str, _Scalar]]
_Properties = Union[_Scalar, list[_Nested], dict[str, _Nested]]


class PlainRecord(msgspec.Struct, forbid_unknown_fields=True, gc=False):  # gc=False: no cycles, ~0.2k less a record
    """The fields of a plain event record (streams/worker/codec.py's contract), as orjson reads them;
    the first six in the order ``models.intake.EventReader.read_events`` takes them (:data:`plain_fields`)."""

    event_id: str
    user_id: str
    type: str
    ts: Union[_Int, str]
    amount: Union[_Int, float, None] = None
    account_id: Union[str, None] = None
    properties: _Properties = None


#: One record value -> its :class:`PlainRecord`; raises (msgspec's errors) when it is not one.
read_plain: Final = msgspec.json.Decoder(PlainRecord).decode
#: A :class:`PlainRecord`'s fields as a tuple, in their order (read from its slots in C).
plain_fields: Final = astuple
