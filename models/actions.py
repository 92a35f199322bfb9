"""The recommended action for the CRM, from the stage, the health/temperature quadrant and the open alert.

Health says whether the user *uses* the product (health >= model.action_health). *Paying* is
either of two things: the user's latest ``subscription`` statement pays (``active`` or
``past_due`` with an MRR above 0: models.state PAYS_SUBSCRIPTION, while the paid period it states
runs or none is stated: models.signals.still_pays), whatever the temperature (a
contract pays by itself, not by a rhythm), or a purchaser's temperature (the one shown,
models.temperature.p_back_within) is >= model.action_temperature, 50 by default, i.e. more likely
than not to be back, and for a repeat buyer to buy again, within the model's horizon (someone
who never bought and holds no paying subscription is not paying). The cut of 50 is the
temperature's own meaning, a coin flip on "back within 30 days", not a fitted number; the
console's quadrant draws its zones at the same cuts, so a dot's place and its colour agree
(but for a subscriber, placed by its temperature and coloured as paying, and a repeat buyer on
schedule, below, placed by health and temperature and coloured as using and paying).

A repeat buyer on schedule both uses and pays (``on_schedule``: purchases on two days or more,
and their next order is not overdue yet by their own rhythm, models.signals.order_due_s, the
notion the engine's at-risk alerts wait for). Why paying: the temperature asks "back within the
horizon", which a buyer with a rhythm slower than the horizon answers "probably not" while right
on schedule, so every loyal 42- or 56-day re-orderer was "not paying" (QA12 F7: ``upsell``, "uses
the product but does not pay", for c00395, 768.44 over 10 orders; 153 and 119 ``upsell`` on the
42- and 56-day regulars of the save list). Why using: in a shop, the order is the use; a buyer
who re-orders on time but rarely browses (coffee by the bag) is not "paying but not using", and
``educate`` landed on 456 regular re-orderers' at-risk alerts. Both only add a way to be using
or paying (monotone): an overdue buyer, a one-time buyer and every non-buyer are judged as
before (docs/SCORES.md, "Actions for a repeat buyer on schedule"). First rule that matches:

1. churned, or a trial cancelled without paying -> ``win_back``
2. new and not using -> ``onboard`` (help them to their first value), paying or not
3. paying but not using -> ``educate`` (they pay for something they do not use: show them how)
4. declining or dormant -> ``check_in``
5. neither using nor paying -> ``check_in`` (the quadrant's "neither" corner: someone should ask why)
6. using but not paying -> ``upsell`` (the product works for them; the money does not follow),
   except a member of a company account (models.state ACCOUNT_MEMBER): ``none``
7. otherwise ``none``

A buyer whose next order is overdue (``overdue``: a repeat buyer past their usual interval,
models.signals.order_due_s, or a one-order buyer past the population's,
models.signals.order_overdue) is not paying by their temperature: their payment is the
order, and it is late. Not using either, they get ``check_in`` (a reminder, an offer), not
``educate``. Why (QA17 F6): 69% of a coffee shop's at-risk alerts said ``educate``, "a paying
user who does not use the product", among them 265 led by "usual re-order every 30 days, none
for 50 days" and every one-order customer the day after the order; neither pays for something
they do not use. A new customer who does not use yet is onboarded first, whether they paid or
not (rule 2): showing a customer of a day what they pay for is onboarding. ``educate`` stays for
a subscriber who pays and does not use, and a buyer likely to buy again (temperature) whose
order is not late and who hardly uses the product.

Subscriptions and accounts (QA pass 6, M1). Before, only purchases made a user "paying": every
user of a company that pays a subscription was told ``upsell`` (QA: all users of an account
paying 100.00/month that had just downgraded from 300.00), and a subscriber who stopped using the
product got ``check_in``, never ``educate``. Now the holder of a paying subscription is paying
(rule 2 and 5 read it). A member of a company account who holds no subscription of their own is
never told ``upsell``: whether the company pays, and what it should buy, is the account's
(models.account_health: its book and alerts say "review how the plan fits their use" after a
downgrade, "fix the payment" when past due), and the user's scoring does not see the account's
subscription (it is kept on the account's partition; only the member's summary goes there,
streams/worker/members.py), so "sell this user more" could only be a guess, and a wrong one for
every user of a paying customer. Such a member still gets ``educate``/``check_in``/``onboard``
as the quadrant says (they read use and the member's own payments), and ``none`` where the
quadrant says ``upsell``.

A user at risk (``at_risk``: an at-risk alert is open, or it is the at-risk alert itself) never
gets ``none`` or ``upsell``: rules 6 and 7 give ``check_in`` instead. The alert tells the CRM that
the user is likely to leave; "do nothing" or "sell them more" next to it contradicts the alert
(QA, 2026-12: demo user u000606, risk 0.60, health 51, temperature 66, "no visit for 1.9x the
usual gap", was told ``none``). The quadrant still decides the specific moves (educate, onboard,
win back): they already act on the risk. models.scoring passes the flag for every view of a user
(alerts, ``score``, ``top``, the console), so the same user shows the same action everywhere: for
an alert, whether the at-risk alert is open once the review that raised it is done
(models.engine), so the at-risk alert is flagged, a ``recovered`` alert (the alert closes) is
not, and a stage change is flagged while the alert stays open, a stage for the better too. A
``recovered`` alert itself says ``none`` whatever this module says of the user (models.engine
``_closing``: it closes the case, as ``account_recovered`` does; QA20a F7, 2026-12-05: 142 of a
B2B file's 733 said ``check_in`` or ``educate``); the user's action in ``score``, ``top``, the
console and the stage change of the same review stays this module's.

A trial cancelled without paying (``trial_lost``: models.state.trial_lost) is a lead that said no,
not a customer to save or onboard: ``win_back`` (win back the plan, as an account that is its one
user is told when its plan is cancelled while the user is still there: "keep the customer, win
back the plan", README; its account, stage ``trial_lost``, is on the owner's win-back list), and no
at-risk alert opens for it (models.engine.alert_may_open). QA23a F1 (2026-12-05): a fitness app's
cancelled trials got 100 ``onboard`` at-risk alerts a median 1.1 days after the cancellation.

Educate comes before check-in because a payer who stopped using is usually also declining,
and showing the value they pay for is the more specific move.

Onboard: churn is likeliest early in a customer's life (the hazard falls with tenure: Fader &
Hardie, "How to project customer retention", Journal of Interactive Marketing 21(1), 2007;
models.risk's ``tenure_log`` effect and the reason "churn is likeliest early on"), and the
standard move against early churn is to bring a new user to the product's first value (the "aha
moment" of customer-success playbooks) before asking for money. It is for stage ``new`` only: a
``reactivated`` user has known the product and came back by themselves, and an older user who
neither uses nor pays is past onboarding: they get ``check_in``, as the quadrant's corner says
(before, ``none``: 255 of the demo's at-risk alerts, "activity down 85%" with nothing to do). It
sits before educate (since QA17 F6: a new user who pays and does not use yet is onboarded; before,
they were told ``educate``) and before upsell, whose condition it never shares (upsell needs a
user of the product). Before it, these users got ``none`` though they head the daily save list
(docs/SCORES.md, "Onboarding new users").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover
    from models.compiled import CompiledModel
    from models.model import ChurnModel

__all__ = ["Action", "recommend"]

Action = Literal["educate", "check_in", "onboard", "upsell", "win_back", "none"]


def recommend(stage: str, health: float, temperature: float, is_buyer: bool, model: "ChurnModel",
              at_risk: bool = False, subscribed: bool = False, member: bool = False,
              on_schedule: bool = False, c: "CompiledModel | None" = None, overdue: bool = False,
              trial_lost: bool = False, cancelling: bool = False) -> Action:
    """The action for one user (module docstring); ``at_risk``: an at-risk alert is open (or
    being opened) for the user, which turns ``none`` and ``upsell`` into ``check_in``;
    ``subscribed``: the user's latest subscription statement pays (paying, whatever the
    temperature); ``member``: the user belongs to a company account (no ``upsell``);
    ``on_schedule``: a repeat buyer whose next order is not overdue (using and paying);
    ``overdue``: a buyer whose next order is overdue (not paying by the temperature);
    ``trial_lost``: a trial cancelled without paying (``win_back``, whatever else).
    ``cancelling``: a cancellation scheduled at the period end is pending (models.signals
    ``cancel_at_s``): ``check_in``, the save call while the paid days last, in any stage but
    churned (QA23a F5: not ``educate`` nor ``onboard``, the user has asked to leave).
    ``c``: ``model.compiled`` where the caller holds it: the two thresholds read from its struct
    (``action_health``, ``action_temperature``), not by generic attribute lookups of the model.

    >>> from models.model import ChurnModel
    >>> m = ChurnModel()
    >>> recommend("active", 80, 20, True, m), recommend("active", 20, 80, True, m), recommend("active", 80, 90, False, m)
    ('upsell', 'educate', 'upsell')
    >>> recommend("declining", 20, 20, False, m), recommend("churned", 90, 90, True, m), recommend("active", 80, 90, True, m)
    ('check_in', 'win_back', 'none')
    >>> recommend("new", 20, 20, False, m), recommend("new", 20, 80, True, m), recommend("reactivated", 20, 20, False, m)
    ('onboard', 'onboard', 'check_in')
    >>> recommend("active", 20, 20, False, m), recommend("active", 20, 80, True, m), recommend("active", 20, 20, True, m)
    ('check_in', 'educate', 'check_in')

    At risk, the quadrant's quiet corners become a check-in; the specific moves stay:

    >>> recommend("active", 80, 90, True, m, True), recommend("active", 80, 20, True, m, True), recommend("new", 80, 90, False, m, True)
    ('check_in', 'check_in', 'check_in')
    >>> recommend("active", 20, 80, True, m, True), recommend("new", 20, 20, False, m, True), recommend("churned", 90, 90, True, m, True)
    ('educate', 'onboard', 'win_back')

    A paying subscriber is paying without a purchase; a company account's member is not sold to:

    >>> recommend("active", 80, 90, False, m, subscribed=True), recommend("declining", 20, 20, False, m, True, True)
    ('none', 'educate')
    >>> recommend("new", 20, 20, False, m, True, True)
    'onboard'

    A buyer whose order is late is not paying by the temperature: a check-in, not educate:

    >>> recommend("declining", 20, 70, True, m, True), recommend("declining", 20, 70, True, m, True, overdue=True)
    ('educate', 'check_in')
    >>> recommend("active", 20, 70, True, m, True, overdue=True), recommend("active", 20, 70, True, m, True, True, overdue=True)
    ('check_in', 'educate')
    >>> recommend("active", 80, 90, False, m, member=True), recommend("active", 80, 90, False, m, True, member=True)
    ('none', 'check_in')

    Asked to cancel at the period end, a subscriber who stopped using is called, not taught:

    >>> recommend("declining", 20, 20, False, m, True, True), recommend("declining", 20, 20, False, m, True, True, cancelling=True)
    ('educate', 'check_in')

    A 42-day re-orderer three weeks after an order: temperature 30, rarely browsing. On schedule,
    they use and pay; overdue, the quadrant decides as for anybody:

    >>> recommend("active", 80, 30, True, m, on_schedule=True), recommend("active", 80, 30, True, m)
    ('none', 'upsell')
    >>> recommend("active", 20, 60, True, m, on_schedule=True), recommend("active", 20, 60, True, m)
    ('none', 'educate')
    >>> recommend("active", 80, 30, True, m, True, on_schedule=True), recommend("dormant", 20, 30, True, m, on_schedule=True)
    ('check_in', 'check_in')

    A trial cancelled without paying is a plan to win back, not a new user to onboard:

    >>> recommend("new", 20, 20, False, m, trial_lost=True), recommend("active", 80, 20, False, m, trial_lost=True)
    ('win_back', 'win_back')
    """
    if stage == "churned" or trial_lost:
        return "win_back"
    if cancelling:
        return "check_in"
    using = on_schedule or health >= (model.action_health if c is None else c.action_health)
    if not using and stage == "new":
        return "onboard"
    paying = subscribed or on_schedule or (is_buyer and not overdue
                                           and temperature >= (model.action_temperature if c is None else c.action_temperature))
    if paying and not using:
        return "educate"
    if stage == "declining" or stage == "dormant":
        return "check_in"
    if not using and not paying:
        return "check_in"
    if at_risk:
        return "check_in"
    if using and not paying and not member:
        return "upsell"
    return "none"
