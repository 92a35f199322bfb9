"""The product's vocabulary: which event names the state tracks one by one, and which play a role.

Every product names its events its own way ("post", "unfriend", "video_play"). The state keeps
the total activity plus, per *slot*, a 7-day and a 4-week decayed count (models.state). Which
name goes to which slot:

- **declared** (``tracked_types`` in the model file, written by ``churnwatch train`` from the
  product's history or by hand): slot i is the i-th name; other names count only in the total.
  Reasons then speak the product's words ("post down 70% against the user's 4-week baseline").
- **not declared** (the shipped default, which knows no product): every name is hashed
  (CRC-32) into :data:`DEFAULT_SLOTS` slots, so breadth of use and per-kind decline still work
  on any product without a configuration; reasons say "one kind of activity".

Breadth of use counts the kinds the *product* has (``population["kinds"]``, models.compiled:
slots, or event names, and purchases), which ``train`` writes from the history; a model without
them counts every slot and purchases, all it can tell apart.

Roles are declared by name (``roles`` in the model file), with defaults that recognise the
usual spellings: ``purchase`` (an activity that also carries an amount and feeds BG/NBD),
``cancel`` (not activity: the user says they leave), ``subscription`` (a billing statement of
the revenue side, models.subscription: not usage, so the usage state leaves it to models.revenue),
``negative`` (negative feedback: activity that says the user is dissatisfied; the state counts
it in counters of its own, models.state, besides the total, and the default risk reads its share
of the user's activity, models.risk), ``ignore`` (events that are not use of the product though
they name a user: a billing system's ``invoice_paid`` or ``subscription_renewed`` sent under the
billing contact's id, a notification sent to the user; counted nowhere in the user's state, so
they neither end a silence nor look like a visit. QA pass 15 F1: a B2B tool's invoices, keyed to
a champion who had left 4.5 months before, read him "silent for 2 weeks" and closed his account's
at-risk alert as recovered in the minute of each invoice. No default names: only the product
knows which of its events are system events).

The default ``negative`` names were chosen from generic product-analytics vocabulary, before any
population was scored with them, one family each of what a dissatisfied user does in a product:
rates content or the product down (``dislike``, ``thumbs_down``, ``downvote``, ``unlike``),
cuts a tie the product lives on (``unfollow``, ``unfriend``, ``block``, ``mute``), reports
abuse (``report_abuse``), tells the company it is unhappy (``complaint``,
``negative_feedback``), takes money back (``refund``, ``refund_request``, ``chargeback``), pays
for less (``downgrade``) or removes the product (``uninstall``). Left out on purpose: ``report``
alone (in a B2B tool running a report is use, not complaint), ``return`` alone (coming back to
the app, or a shop's return), ``hide`` (often tidying), and every name that only a particular
product's data would suggest is negative (an ad view is not dissatisfaction by its name).
A product overrides the list with ``roles.negative`` in its model file (at most 16 names: the
state remembers which of them a user used in a 16-bit mask, for the reasons; sixteen because
the record has no byte to spare, models.state).

**Grievances** (``roles.grievance``, a subset of the ``negative`` names, not a role of its own:
the names still play ``negative``): a customer telling the company they are unhappy with what
they paid for, by default :data:`DEFAULT_GRIEVANCE` (a complaint, a refund asked for, a
chargeback) among the product's ``negative`` names; a model file that declares
``roles.grievance`` names its own (an empty list: none). Not dislikes, unfollows or downgrades:
those are frequent in products that live on them (a social network's ``unfriend``) and say
little each; a paying customer's complaint is the moment a shop calls (QA17 F8: 386 churners of
a coffee shop complained or asked for a refund after their last order, and 18 got an at-risk
alert within 14 days of it). A paying customer's grievance opens an at-risk alert whatever the
risk (models.engine, models.state ``GRIEVANCE``).

**Recurring** (``roles.recurring``, no default names: only the product knows them): events that
come to the user on a calendar while they are a customer, a bank's ``salary_deposit`` (or a
pension, benefits), a B2B tool's weekly report, a monthly invoice paid. They stay activity (their
slot, the total, a visit), and the state also keeps their rhythm per user (first and last time,
distinct days with one: models.state ``n_recurring``), so that one late by a fifth of the user's
usual interval opens an at-risk alert whatever the risk, its reason first in the product's words
("salary_deposit overdue: usually every 30 days, none for 36 days (last 2026-09-25)":
models.signals.credit_late, models.engine, models.reasons). QA19 F1/F2: a bank's stopped salary,
the strongest sign a customer is leaving, was named in 84 of 358 switchers' first alerts, in an
event count's words. The rhythm shares the record's bytes of the purchases (the 300-byte budget,
models.state): a user with a purchase on record keeps no recurring rhythm, so a product declares
the role where its customers do not also buy (with both, the rule speaks only for those who never
bought). One rhythm for all the role's names, its interval their mean: declare names that come
together (one credit), not credits on different days of the month (docs/SCORES.md "A recurring
credit overdue", Limits).

**Cancel request** (``roles.cancel_request``, no default names: ``churnwatch train`` names the
history's events that look like one, ``cancel_requested``, ``cancellation_scheduled``, ...,
streams.cli.train.cancel_request_line): a cancellation *at the end of the paid period* (Stripe's
``cancel_at_period_end``, the usual cancel flow of subscription apps). Not activity. While the
user's latest statement pays for a period that ends after the request, the user stays a customer
until that end: the state dates the cancellation at the period's end (models.state
``cancelled_s``, no byte more: models.state.scheduled_cancel_s), an at-risk alert opens at the
request whatever the risk ("asked to cancel; paid through 2026-03-03 (in 24 days)", action
``check_in``), the user heads the save list, and churns at the period end unless a renewal (an
``active`` statement paying a later end) withdraws it first. Without such a period (no paying
statement, or its end passed) it is a cancellation at once, as ``cancel``'s. QA23a F5: declared
as ``cancel``, 185 requests with a median 11 paid days left churned their users at once
("cancelled today", win back); undeclared, each counted as a visit.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Final, Mapping, Sequence

__all__ = [
    "ACTIVITY",
    "CANCEL",
    "CANCEL_REQUEST",
    "DEFAULT_ROLES",
    "DEFAULT_SLOTS",
    "DEFAULT_GRIEVANCE",
    "DEFAULT_VOCABULARY",
    "GRIEVANCE_ROLE",
    "IGNORE",
    "MAX_NEGATIVE_NAMES",
    "MAX_SLOTS",
    "NEGATIVE",
    "PURCHASE",
    "RECURRING",
    "ROLES",
    "SUBSCRIPTION",
    "Vocabulary",
]

ACTIVITY: Final[int] = 0
PURCHASE: Final[int] = 1
CANCEL: Final[int] = 2
SUBSCRIPTION: Final[int] = 3
NEGATIVE: Final[int] = 4
IGNORE: Final[int] = 5
RECURRING: Final[int] = 6
CANCEL_REQUEST: Final[int] = 7
#: Role names as the model file writes them -> role code.
ROLES: Final[Mapping[str, int]] = {"purchase": PURCHASE, "cancel": CANCEL, "subscription": SUBSCRIPTION, "negative": NEGATIVE,
                                   "ignore": IGNORE, "recurring": RECURRING, "cancel_request": CANCEL_REQUEST}
DEFAULT_ROLES: Final[Mapping[str, tuple[str, ...]]] = {
    "purchase": ("purchase", "order", "payment", "checkout", "buy", "transaction"),
    "cancel": ("cancel", "cancellation", "unsubscribe", "cancel_subscription", "subscription_cancel", "account_delete", "delete_account"),
    "subscription": ("subscription",),
    "negative": (
        "dislike", "thumbs_down", "downvote", "unlike", "unfollow", "unfriend", "block", "mute",
        "report_abuse", "complaint", "negative_feedback", "refund", "refund_request", "chargeback",
        "downgrade", "uninstall",
    ),
}
#: The ``negative`` names that are a grievance when the model file declares no ``roles.grievance``
#: (module docstring): those of them the model's ``negative`` role has.
DEFAULT_GRIEVANCE: Final[tuple[str, ...]] = ("complaint", "refund", "refund_request", "chargeback")
#: The key of ``roles`` that names the grievances: a subset of ``negative``, no role code of its own.
GRIEVANCE_ROLE: Final[str] = "grievance"
#: Most ``negative`` names a model may declare (the state's mask of names used has 16 bits).
MAX_NEGATIVE_NAMES: Final[int] = 16
#: Slots when no names are declared (hashed), and the most a model may declare.
DEFAULT_SLOTS: Final[int] = 8
MAX_SLOTS: Final[int] = 16
_CACHE_MAX: Final[int] = 10_000  # distinct names remembered (a product has tens, not millions)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Slots and roles of event names (module docstring).

    >>> v = Vocabulary(("post", "like"))
    >>> v.lookup("like"), v.lookup("order"), v.lookup("share"), v.lookup("cancellation"), v.lookup("unfriend")
    ((1, 0), (-1, 1), (-1, 0), (-1, 2), (-1, 4))
    >>> Vocabulary().lookup("dislike"), Vocabulary().negative_index("unfriend"), Vocabulary().negative_name(5)
    ((-1, 4), 5, 'unfriend')
    >>> Vocabulary().lookup("post")[0] in range(DEFAULT_SLOTS)
    True
    >>> Vocabulary().is_grievance("refund"), Vocabulary().is_grievance("dislike"), Vocabulary(roles={"negative": ["dislike"]}).grievance_mask()
    (True, False, 0)
    """

    tracked: tuple[str, ...] = ()
    roles: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    _names: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.tracked) > MAX_SLOTS:
            raise ValueError(f"tracked_types names {len(self.tracked)} event types, at most {MAX_SLOTS}")
        if len(set(self.tracked)) != len(self.tracked) or not all(isinstance(n, str) and n for n in self.tracked):
            raise ValueError(f"tracked_types must be distinct non-empty names, got {list(self.tracked)}")
        unknown = set(self.roles) - set(ROLES) - {GRIEVANCE_ROLE}
        if unknown:
            raise ValueError(f"roles name unknown roles {sorted(unknown)}; known: {sorted(ROLES)}")
        if len(self.roles.get("negative", ())) > MAX_NEGATIVE_NAMES:
            raise ValueError(f"roles.negative names {len(self.roles['negative'])} event types, at most {MAX_NEGATIVE_NAMES}")
        negative = list(self.roles.get("negative", ()))
        declared = self.roles.get(GRIEVANCE_ROLE)
        if declared is not None and not set(declared) <= set(negative):
            raise ValueError(f"roles.grievance names {sorted(set(declared) - set(negative))}, not in roles.negative: a grievance "
                             f"is negative feedback, declare it there too")
        both = sorted(set(self.tracked) & set(self.roles.get("ignore", ())))
        if both:
            raise ValueError(f"roles.ignore names {both}, which tracked_types tracks as use: give each name one of the two")

    @property
    def n_slots(self) -> int:
        return len(self.tracked) if self.tracked else DEFAULT_SLOTS

    def slot_name(self, slot: int) -> str | None:
        """The event name of ``slot``, None for hashed slots (several names may share one)."""
        return self.tracked[slot] if self.tracked else None

    def negative_index(self, name: str) -> int:
        """Position of ``name`` in the ``negative`` role's names (-1 when not there)."""
        names = self.roles.get("negative", ())
        return list(names).index(name) if name in names else -1

    def negative_name(self, index: int) -> str:
        """The ``negative`` role's ``index``-th name."""
        return str(self.roles.get("negative", ())[index])

    def cancel_name(self) -> str | None:
        """The product's own name of a cancellation when the ``cancel`` role names one event type
        (a bank's ``account_closed``), else None: of several names a state does not keep which one
        came, and the reason says "cancelled". QA19 F10: a bank's closed accounts read "cancelled
        97 days ago". None too when a ``cancel_request`` role is declared: the state keeps one
        cancellation time, whether the cancel event set it or a request that took effect at the
        period end did (QA24a: a publisher's lapsed subscribers, who had clicked ``cancel``, all
        read "account_delete 39 days ago", the one name of its ``cancel`` role).

        >>> Vocabulary(roles={"cancel": ["account_closed"]}).cancel_name(), Vocabulary().cancel_name()
        ('account_closed', None)
        >>> Vocabulary(roles={"cancel": ["account_delete"], "cancel_request": ["cancel"]}).cancel_name()
        """
        return None if self.roles.get("cancel_request") else self.own_name("cancel")

    def own_name(self, role: str) -> str | None:
        """The product's own name of ``role`` when the role names one event type, else None (of
        several names a state does not keep which one came): :meth:`cancel_name`, and the
        purchase role's, which the late purchase reason says instead of the shop's "re-order"
        (QA22b F10: a game's ``iap_purchase`` read "usual re-order every 9 days").

        >>> Vocabulary(roles={"purchase": ["iap_purchase"]}).own_name("purchase"), Vocabulary().own_name("purchase")
        ('iap_purchase', None)
        """
        names = self.roles.get(role, ())
        return names[0] if len(names) == 1 else None

    def recurring_text(self) -> str:
        """The ``recurring`` role's names as a reason says them (models.reasons): the product's
        own name, or its names joined by "or" (the state keeps one rhythm for all of them).

        >>> Vocabulary(roles={"recurring": ["salary_deposit", "pension"]}).recurring_text()
        'salary_deposit or pension'
        """
        return " or ".join(self.roles.get("recurring", ())) or "recurring event"

    def is_grievance(self, name: str) -> bool:
        """Whether events named ``name`` are a grievance (module docstring): a ``negative`` name
        the model's ``roles.grievance`` lists, or without that list one of :data:`DEFAULT_GRIEVANCE`."""
        return name in self.roles.get("negative", ()) and name in self.roles.get(GRIEVANCE_ROLE, DEFAULT_GRIEVANCE)

    def grievance_mask(self) -> int:
        """Bit i set where the ``negative`` role's i-th name is a grievance: the bits of the
        state's mask of negative names used (models.state) that are grievances."""
        return sum([1 << i for i, name in enumerate(self.roles.get("negative", ())) if self.is_grievance(name)])

    def untracked(self, name: str) -> bool:
        """Whether events named ``name`` count only in the total: the model declares the names it
        tracks, and this is none of them and plays no role (a renamed or new name, QA10 F6). Never
        with hashed slots (no declared names): every name has a kind there.

        >>> Vocabulary(("post",)).untracked("Post"), Vocabulary(("post",)).untracked("post"), Vocabulary(("post",)).untracked("order")
        (True, False, False)
        >>> Vocabulary().untracked("Post")
        False
        """
        return bool(self.tracked) and self.lookup(name) == (-1, ACTIVITY)

    def lookup(self, name: str) -> tuple[int, int]:
        """(slot or -1, role) of an event name; cancellations, subscription statements and ignored
        names take no slot (they are not activity), nor do purchases and negative feedback without
        tracked names (they have counters of their own, models.state).

        >>> Vocabulary(roles={"ignore": ["invoice_paid"]}).lookup("invoice_paid")
        (-1, 5)
        """
        found = self._names.get(name)
        if found is None:
            found = self._resolve(name)
            if len(self._names) < _CACHE_MAX:
                self._names[name] = found
        return found

    def _resolve(self, name: str) -> tuple[int, int]:
        role = ACTIVITY
        for role_name, names in self.roles.items():
            if name in names and role_name != GRIEVANCE_ROLE:
                role = ROLES[role_name]
                break
        if role in (CANCEL, SUBSCRIPTION, IGNORE, CANCEL_REQUEST):
            return -1, role
        if self.tracked:
            return (self.tracked.index(name) if name in self.tracked else -1), role
        if role in (PURCHASE, NEGATIVE):
            return -1, role  # their own counters (models.state), not mixed into a hashed kind
        return zlib.crc32(name.encode()) % DEFAULT_SLOTS, role


DEFAULT_VOCABULARY: Final[Vocabulary] = Vocabulary()
