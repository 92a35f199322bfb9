"""Accounts end to end through the real broker, Redis and worker: owners, plans and their signals.

Five accounts of three owners over 60 days of event time, published in phases of 6 days (the
worker catches up between them, as it keeps up with a live stream: statements of one account sent
by different users reach the account in time order, and members are never weeks apart): acme (5 users; upgrade, then a downgrade; 3 users go silent), globex (an add-on
from a second user, then a failed payment), initech (upgrade, then cancelled), umbrella (a
trial whose two users go silent) and hooli (carol's family plan whose three members all cancel
while it stays paid: QA16 F11, no save alert, on the win-back list). Checks the account alerts and their reasons, the owner's ranked
book, when paid periods end (``accounts show``), the daily digest and the live MRR figures against
``churnwatch report``'s code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import orjson
import pytest

from models.events import EVENT_ORDER, Event
from models.revenue_ledger import RevenueBook, figures_dict
from models.subscription import Subscription
from streams.cli import main
from streams.cli.revenue import first_paid_ms, opening_counts, opening_note
from streams.settings import Settings
from streams.worker.topics import ensure_topics
from tests.harness import Worker, account_barrier, metric, publish_events, wait_for, wait_progress
from tests.harness import read_topic as harness_read_topic

pytestmark = pytest.mark.integration

START_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
DAYS = 60
PARTITIONS = 4


def _day(d: int, minute: int = 0) -> int:
    return START_MS + d * DAY_MS + 10 * HOUR_MS + minute * 60_000


def _sub(user: str, account: str, d: int, status: str, plan: str, mrr_cents: int, trial_ends_day: int = 0,
         period_end_day: int = 0) -> Event:
    ends = START_MS + trial_ends_day * DAY_MS if trial_ends_day else 0
    period_end = START_MS + period_end_day * DAY_MS if period_end_day else 0
    return Event(user, _day(d, 30), "subscription", f"s-{user}-{d}", 0.0, account,
                 Subscription(status, plan, mrr_cents, ends, period_end))  # type: ignore[arg-type]


def history() -> list[Event]:
    events: list[Event] = []
    active = {"a1": ("acme", 0, 60), "a2": ("acme", 0, 60), "a3": ("acme", 0, 38), "a4": ("acme", 0, 38),
              "a5": ("acme", 0, 38), "g1": ("globex", 0, 60), "g2": ("globex", 0, 60), "i1": ("initech", 0, 45),
              "i2": ("initech", 0, 45), "m1": ("umbrella", 30, 33), "m2": ("umbrella", 30, 33)}
    active.update({u: ("hooli", 0, 40 + k) for k, u in enumerate(("x1", "x2", "x3"))})  # a family plan whose members all cancel (sorted last: the others' minutes stay)
    for i, (user, (account, first, end)) in enumerate(sorted(active.items())):
        for d in range(first, end):
            if user in ("a1", "a2") and d >= 30 and d % 7 != (user == "a2"):
                continue  # acme's two remaining users come once a week only from day 30
            events.append(Event(user, _day(d, i), "view", f"v-{user}-{d}", 0.0, account))
    events += [
        _sub("a1", "acme", 0, "active", "Business", 29_900, period_end_day=31),
        _sub("a1", "acme", 20, "active", "Enterprise", 49_900, period_end_day=31),  # upgrade
        _sub("a1", "acme", 40, "active", "Pro", 9_900, period_end_day=71),  # downgrade: paid to 2026-03-13
        _sub("g1", "globex", 0, "active", "Pro", 4_999),
        _sub("g2", "globex", 20, "active", "Add-on", 999),  # a second subscription, from another user
        _sub("g1", "globex", 50, "past_due", "Pro", 4_999),  # failed payment
        _sub("i1", "initech", 0, "active", "Basic", 1_999, period_end_day=31),
        _sub("i1", "initech", 30, "active", "Pro", 4_999, period_end_day=61),  # upgrade
        _sub("i1", "initech", 45, "cancelled", "Pro", 0, period_end_day=61),  # cancellation: renews nothing
        _sub("m1", "umbrella", 30, "trial", "Pro", 0, trial_ends_day=50),  # its users fall silent after 3 days
        _sub("x1", "hooli", 0, "active", "Family", 1_699, period_end_day=31),
        _sub("x1", "hooli", 30, "active", "Family", 1_699, period_end_day=61),  # renewed, then nobody left to use it
    ]
    events += [Event(u, _day(40 + k, 45), "cancel", f"c-{u}", 0.0, "hooli") for k, u in enumerate(("x1", "x2", "x3"))]
    return sorted(events, key=EVENT_ORDER)


OWNERS = """account_id,name,owner,segment,renewal_date
acme,Acme Corp,alice,enterprise,2026-03-22
globex,Globex,alice,mid-market,2026-09-01
umbrella,Umbrella,alice,smb,
initech,Initech,bob,smb,2026-06-01
hooli,Hooli,carol,consumer,
"""


def read_topic(bootstrap: str, topic: str, partitions: int) -> list[tuple[bytes | None, dict[str, object]]]:
    """Every record of ``topic`` as (key, JSON), read to each partition's highwater
    (``tests.harness.read_topic``: not until a quiet spell, which a loaded machine's slow first
    fetch could cut short)."""
    return [(rec.key, orjson.loads(rec.value)) for rec in harness_read_topic(bootstrap, topic, partitions)]


@pytest.fixture()
def names(kafka_bootstrap: str, unique_name: str) -> dict[str, str]:
    n = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}",
         "group": f"g-{unique_name}", "accounts": f"acc-{unique_name}", "digest": f"dig-{unique_name}"}
    ensure_topics(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=n["events"], topic_alerts=n["alerts"],
                           topic_dlq=n["dlq"], partitions=PARTITIONS))
    return n


@pytest.fixture()
def worker(kafka_bootstrap: str, redis_url: str, names: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    w = Worker(kafka_bootstrap, redis_url, names, tmp_path / "worker.log",
               env={"CHURNWATCH_IDLE_PARTITION_MS": "1000", "CHURNWATCH_BATCH_MAX_RECORDS": "200",
                    "CHURNWATCH_PARTITIONS": str(PARTITIONS)}).start()
    yield w
    assert w.stop() == 0, w.output()[-3000:]


def test_accounts_owners_alerts_book_digest_and_live_mrr(
    kafka_bootstrap: str, redis_url: str, names: dict[str, str], worker: Worker, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for var, value in (("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap), ("REDIS_URL", redis_url),
                       ("CHURNWATCH_TOPIC_EVENTS", names["events"]), ("CHURNWATCH_TOPIC_ALERTS", names["alerts"]),
                       ("CHURNWATCH_TOPIC_ACCOUNTS", names["accounts"]), ("CHURNWATCH_TOPIC_DIGEST", names["digest"]),
                       ("CHURNWATCH_PARTITIONS", str(PARTITIONS))):
        monkeypatch.setenv(var, value)
    owners = tmp_path / "owners.csv"
    owners.write_text(OWNERS)
    assert main(["accounts", "import", str(owners)]) == 0

    events = history()
    topic = names["events"]
    for lo in range(0, DAYS, 6):  # the worker catches up every 6 days of event time, as it keeps up live
        hi = min(lo + 6, DAYS)
        phase = [e for e in events if START_MS + lo * DAY_MS <= e.ts_ms < START_MS + hi * DAY_MS]
        last = publish_events(kafka_bootstrap, topic, phase)
        wait_progress(redis_url, topic, last, timeout_s=120, workers=[worker])
    account_barrier(kafka_bootstrap, redis_url, topic, PARTITIONS, 1, _day(DAYS - 1, 50), workers=[worker])
    capsys.readouterr()

    # -- QA pass 6 M1: the users of paying accounts, through the stored states (format 7, their
    # flags): a1 holds acme's subscription and hardly uses the product any more (educate, was
    # check_in); g1 and g2 hold globex's two subscriptions and use it daily (none, was upsell)
    for user, action in (("a1", "educate"), ("g1", "none"), ("g2", "none")):
        assert main(["score", user, "--json"]) == 0
        assert orjson.loads(capsys.readouterr().out)["action"] == action, user

    # -- live MRR figures: what `churnwatch report` computes over the same events
    book = RevenueBook("month")
    for ev in events:
        book.update(ev)
    want = [figures_dict(f) for f in book.get(START_MS, START_MS + DAYS * DAY_MS)]
    assert main(["churn-rate", "--from", "2026-01-01", "--to", "2026-03-02", "--json"]) == 0
    live = orjson.loads(capsys.readouterr().out)["revenue"]["periods"]
    assert live == want
    jan, feb, mar = live
    assert (jan["new"], jan["expansion"], jan["end_mrr"]) == ("385.97", "239.99", "625.96")  # hooli's Family 16.99 from day 0
    assert (feb["contraction"], feb["churned"], feb["lost"], feb["end_mrr"]) == ("400.00", "49.99", 1, "175.97")
    assert mar["start_mrr"] == "175.97" and feb["gross_mrr_churn_pct"] == "71.8880"
    # the text prints the retention figures of --json too (QA pass 9 L5: NRR, GRR, quick ratio were left out)
    assert main(["churn-rate", "--from", "2026-01-01", "--to", "2026-03-02"]) == 0
    text = capsys.readouterr().out
    for f in live:
        assert f"  NRR {f['nrr_pct'] or '-'}%, GRR {f['grr_pct'] or '-'}%, quick ratio {f['quick_ratio'] or '-'}\n" in text, text
    assert f"GRR {feb['grr_pct']}%" in text and feb["grr_pct"] is not None
    # QA20a F10: January holds the base the stream opened on (every account paying from day 0): report's
    # opening note, which the live counters now say too, to the day (they keep days), the rest word for word
    report_note = opening_note(first_paid_ms(book), book.get(START_MS, START_MS + DAYS * DAY_MS), opening_counts(
        [mv.ts_ms for mv in book.movements if mv.kind == "new"], min(e.ts_ms for e in events), max(e.ts_ms for e in events)))
    assert report_note is not None and report_note.startswith("the history's paid statements begin 2026-01-01 10:30, inside")
    assert main(["churn-rate", "--from", "2026-01-01", "--to", "2026-03-02", "--json"]) == 0
    live_note = orjson.loads(capsys.readouterr().out)["revenue"]["opening_note"]
    assert live_note == "the stream's paid statements begin 2026-01-01, inside" + report_note.split(", inside", 1)[1]
    assert f"\nnote: {live_note}\n" in text
    assert main(["churn-rate", "--from", "2026-02-01", "--to", "2026-03-02", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["revenue"]["opening_note"] is None, "February's new is no opening base"

    # -- account alerts, with reasons, one episode each (umbrella's reminders come from its own
    # reviews, due by themselves: the barrier waits for copies, so wait for the second one too)
    wait_for("umbrella's two reminders", lambda: sum(a.get("kind") == "trial_ending" for _, a in read_topic(
        kafka_bootstrap, names["alerts"], PARTITIONS)) >= 2, workers=[worker])
    alerts = [a for _, a in read_topic(kafka_bootstrap, names["alerts"], PARTITIONS) if "account_id" in a]
    by_account: dict[str, list[dict[str, object]]] = {}
    for a in alerts:
        by_account.setdefault(str(a["account_id"]), []).append(a)
    assert {a["kind"] for a in by_account["acme"]} == {"account_at_risk"}
    acme = by_account["acme"][0]
    days = (int(acme["event_time_ms"]) - _day(40, 30)) // DAY_MS  # type: ignore[call-overload]
    # at risk the moment the downgrade is stated: Enterprise 499.00 to Pro 99.00 cuts 80% of the MRR,
    # and a downgrade counts the share it cut (QA11 F4; until then a flat 0.35, and acme opened only
    # when a4 had been silent 14 days too, "renewal in 20 days while usage fell 27%")
    assert acme["event_time_ms"] == _day(40, 30) and days == 0 and len(by_account["acme"]) == 1  # one episode
    # its last 4 weeks a little under its 3-month rate: a small part beside the downgrade (QA23b F4)
    assert acme["reasons"] == ["downgraded from Enterprise to Pro today (MRR cut by 80%)",
                               "usage over the last 4 weeks down 10% against its 3-month rate, all 5 users still active"], acme["reasons"]
    assert acme["action"] == "review how the plan fits their use" and float(acme["risk"]) >= 0.5  # type: ignore[arg-type]
    globex = by_account["globex"][0]
    assert globex["kind"] == "account_at_risk" and globex["reasons"] == ["payment failed today (past due)"]
    assert globex["event_time_ms"] == _day(50, 30) and globex["mrr"] == 59.98
    assert globex["action"] == "fix the payment with the billing contact"
    assert [a["kind"] for a in by_account["initech"]] == ["account_churned"]
    assert by_account["initech"][0]["reasons"][0] == "subscription cancelled"  # type: ignore[index]
    assert all(len({a["alert_id"] for a in v}) == len(v) for v in by_account.values())
    # QA16 F11: hooli's three members cancelled on days 40-42, its plan still paid: no save alert
    # (before: account_at_risk on day 53, "usage over the last 2 weeks down 43%", nobody left to save)
    assert "hooli" not in by_account, by_account.get("hooli")
    # umbrella's users fell silent after 3 days: nothing arrives for it, its reviews come due by themselves
    umbrella = by_account["umbrella"]
    assert [a["kind"] for a in umbrella] == ["account_at_risk", "trial_ending", "trial_ending"], umbrella
    assert [(a["hours_left"], a["event_time_ms"]) for a in umbrella if a["kind"] == "trial_ending"] == [
        (72, START_MS + 47 * DAY_MS), (24, START_MS + 49 * DAY_MS)]
    assert umbrella[0]["event_time_ms"] == _day(32, 10) + 14 * DAY_MS  # when m2 (minute 10) had been silent 14 days too
    assert umbrella[1]["action"] == "help them convert before the trial ends" and umbrella[1]["health"] < 50
    user_alerts = [a for _, a in read_topic(kafka_bootstrap, names["alerts"], PARTITIONS) if "user_id" in a]
    assert any(a["user_id"] in ("a3", "a4", "a5") for a in user_alerts), "user alerts go on as before"

    # -- the owner's book: alice's at-risk accounts, ranked; bob's only account has churned
    assert main(["top", "--owner", "alice", "--json"]) == 0
    alice = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    # acme first since QA11 F4: its downgrade cut 80% of its MRR, a part of 0.80 (was 0.35: umbrella first)
    assert [a["account_id"] for a in alice] == ["acme", "umbrella", "globex"], alice
    assert [a["risk"] for a in alice] == sorted((a["risk"] for a in alice), reverse=True)
    assert alice[1]["stage"] == "at_risk" and alice[1]["reasons"][0] == "both users silent for 3 weeks"
    assert alice[0]["reasons"][0] == "downgraded from Enterprise to Pro 19 days ago (MRR cut by 80%)" and alice[0]["mrr"] == 99.0, orjson.dumps(alice).decode()
    assert alice[0]["reasons"][-1].startswith("renewal in 21 days while usage fell"), orjson.dumps(alice).decode()
    # QA 2026-12: the reason said 20 days next to the column's "2026-03-22 (in 21 d)" (24-h periods vs calendar days)
    assert alice[2]["mrr"] == 59.98 and alice[2]["reasons"][0].startswith("payment failed 9 days ago")
    assert main(["top", "--owner", "alice"]) == 0
    book = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "  2026-03-22 (in 21 d)  " in book["acme"], "the contract's renewal date (accounts table) first"
    assert main(["top", "--owner", "bob"]) == 0
    assert capsys.readouterr().out.strip() == "no account of bob is at risk"
    # QA 2026-12: --win-back with --owner printed "no account ... is at risk"; now the churned ones
    assert main(["top", "--owner", "bob", "--win-back", "--json"]) == 0
    bob = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(b["stage"], b["warned_on"], b["warned_reasons"]) for b in bob] == [("churned", None, [])]  # never at risk first
    assert main(["top", "--owner", "alice", "--win-back"]) == 0
    assert capsys.readouterr().out.strip() == "no churned or lapsed account or lost trial of alice to win back"
    assert main(["top", "--owner", "nobody"]) == 2
    # carol's family plan: nobody to save, on her win-back list, lapsed, the MRR it still pays, left
    # when its last member was seen (x3, day 41), nothing before it (no alert opened)
    assert main(["top", "--owner", "carol"]) == 0
    assert capsys.readouterr().out.strip() == "no account of carol is at risk"
    assert main(["top", "--owner", "carol", "--win-back", "--json"]) == 0
    carol = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(c["account_id"], c["stage"], c["action"], c["reasons"][0], c["mrr"], c["left_on"], c["warned_on"]) for c in carol] == [
        ("hooli", "lapsed", "win back", "all 3 users cancelled, the last seen 18 days ago", 16.99, "2026-02-11", None)], carol

    # -- when the paid period ends (period_end of the subscription events): acme's last statement
    # paid it to day 71; umbrella is in trial, globex stated none, initech's cancellation renews nothing
    assert [(a["renews_on"], a["renews_in_days"]) for a in alice] == [("2026-03-13", 12), (None, None), (None, None)]
    capsys.readouterr()
    assert main(["accounts", "show", "acme"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith("Acme Corp (acme), owner alice, contract renewal 2026-03-22, as of 2026-03-01 ") and text[0].endswith(" UTC (stream time)") and \
        text[1] == "renews 2026-03-13 (in 12 days)", text
    assert any(line.split() == ["Pro", "active", "99.00", "since", "2026-02-10", "renews", "2026-03-13"] for line in text), text
    assert main(["accounts", "show", "initech", "--json"]) == 0
    initech = orjson.loads(capsys.readouterr().out)
    assert initech["stage"] == "churned" and initech["renews_on"] is None
    assert [(s["status"], s["renews_on"]) for s in initech["subscriptions"]] == [("cancelled", None)]
    assert main(["accounts", "show", "nobody"]) == 2

    # -- the daily digest: one message per owner per day, on the digest topic
    capsys.readouterr()
    for _ in range(2):  # run twice: the same keys, so still one message per owner and day
        assert main(["digest", "--all-owners", "--publish", "--json"]) == 0
    out = capsys.readouterr()
    printed = [orjson.loads(line) for line in out.out.splitlines()]
    assert out.err.count("published 3 digests to ") == 2 and "alice|2026-03-01, bob|2026-03-01, carol|2026-03-01" in out.err  # QA: said nothing
    assert [(m["owner"], m["day"]) for m in printed[:2]] == [("alice", "2026-03-01"), ("bob", "2026-03-01")]
    assert [a["account_id"] for a in printed[0]["accounts"]] == ["acme", "umbrella", "globex"]
    digests = read_topic(kafka_bootstrap, names["digest"], PARTITIONS)
    assert sorted(k for k, _ in digests) == [b"alice|2026-03-01"] * 2 + [b"bob|2026-03-01"] * 2 + [b"carol|2026-03-01"] * 2  # keyed: readers keep the last
    assert main(["digest", "--owner", "alice"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("alice, 2026-03-01: 3 accounts to save today") and "re-engage the silent users" in text
    # -n cuts the list: the line says of how many at risk (QA 2026-12-02: "20 accounts" when 39 were)
    assert main(["digest", "--owner", "alice", "-n", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("alice, 2026-03-01: 2 of 3 accounts to save today") and "globex" not in text, text
    assert main(["digest", "--owner", "alice", "-n", "2", "--json"]) == 0
    cut = orjson.loads(capsys.readouterr().out)
    assert (cut["at_risk"], [a["account_id"] for a in cut["accounts"]]) == (3, ["acme", "umbrella"])


def import_owners(kafka_bootstrap: str, redis_url: str, names: dict[str, str], tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's environment for this test's topics, and OWNERS imported."""
    for var, value in (("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap), ("REDIS_URL", redis_url),
                       ("CHURNWATCH_TOPIC_EVENTS", names["events"]), ("CHURNWATCH_TOPIC_ALERTS", names["alerts"]),
                       ("CHURNWATCH_TOPIC_ACCOUNTS", names["accounts"]), ("CHURNWATCH_PARTITIONS", str(PARTITIONS))):
        monkeypatch.setenv(var, value)
    owners = tmp_path / "owners.csv"
    owners.write_text(OWNERS)
    assert main(["accounts", "import", str(owners)]) == 0


def replay_in_phases(kafka_bootstrap: str, redis_url: str, topic: str, events: list[Event], w: Worker) -> None:
    """``events`` published 6 days of event time at a time, ``w`` caught up after each, then every
    account copy applied (as the first test does)."""
    for lo in range(0, DAYS, 6):
        phase = [e for e in events if START_MS + lo * DAY_MS <= e.ts_ms < START_MS + min(lo + 6, DAYS) * DAY_MS]
        wait_progress(redis_url, topic, publish_events(kafka_bootstrap, topic, phase), timeout_s=120, workers=[w])
    account_barrier(kafka_bootstrap, redis_url, topic, PARTITIONS, 1, _day(DAYS - 1, 50), workers=[w])


def test_alerts_from_withholds_the_account_alerts_before_it_and_keeps_their_state(
    kafka_bootstrap: str, redis_url: str, names: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """QA14 F9's leftover: ``CHURNWATCH_ALERTS_FROM`` withheld only user alerts, so an onboarded
    history's first weeks still sent its accounts' alerts to the CRM. From day 48 (2026-02-18) of the
    history above, acme's downgrade (day 40), initech's cancellation (45), umbrella's at-risk (46) and
    first trial reminder (47) are withheld; the second reminder (49) and globex's failed payment (50)
    are sent, and the accounts' state is what it is without the setting (alice's book the same)."""
    import_owners(kafka_bootstrap, redis_url, names, tmp_path, monkeypatch)
    w = Worker(kafka_bootstrap, redis_url, names, tmp_path / "worker.log",
               env={"CHURNWATCH_IDLE_PARTITION_MS": "1000", "CHURNWATCH_BATCH_MAX_RECORDS": "200",
                    "CHURNWATCH_PARTITIONS": str(PARTITIONS), "CHURNWATCH_ALERTS_FROM": "2026-02-18"}).start()
    try:
        replay_in_phases(kafka_bootstrap, redis_url, names["events"], history(), w)

        def account_alerts() -> list[dict[str, object]]:
            return [a for _, a in read_topic(kafka_bootstrap, names["alerts"], PARTITIONS) if "account_id" in a]
        # umbrella's reminders come from its own reviews, due by themselves (no copy to wait for)
        wait_for("umbrella's 24 h reminder", lambda: any(a["kind"] == "trial_ending" for a in account_alerts()), workers=[w])
        withheld = {kind: metric(w, "churnwatch_alerts_withheld_total", f'kind="{kind}"')
                    for kind in ("account_at_risk", "account_churned", "trial_ending")}
    finally:
        assert w.stop() == 0, w.output()[-3000:]
    assert withheld == {"account_at_risk": 2, "account_churned": 1, "trial_ending": 1}, withheld
    sent = account_alerts()
    assert sorted((a["account_id"], a["kind"], a["event_time_ms"]) for a in sent) == [
        ("globex", "account_at_risk", _day(50, 30)), ("umbrella", "trial_ending", START_MS + 49 * DAY_MS)], sent
    assert "account alerts with an event time before 2026-02-18T00:00:00.000Z (CHURNWATCH_ALERTS_FROM)" in w.output()
    capsys.readouterr()
    assert main(["top", "--owner", "alice", "--json"]) == 0
    alice = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["account_id"], a["stage"]) for a in alice] == [("acme", "at_risk"), ("umbrella", "at_risk"), ("globex", "at_risk")]


def test_member_alerts_separate_leaves_the_alerts_topic_to_accounts_and_users_of_none(
    kafka_bootstrap: str, redis_url: str, names: dict[str, str], unique_name: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """QA18 F6: a B2B CRM reading the alerts topic got 23 member cases per account case. With
    ``CHURNWATCH_MEMBER_ALERTS=separate`` the history above (every user a member) plus s1, a user
    of no account who falls silent, gives on the alerts topic the account alerts and s1's alerts
    only; the members' user alerts are on their own topic. Each user alert is, byte for byte in
    content and id, the backtest's of the same events (the stream = backtest identity holds), and
    ``backtest --member-alerts separate`` writes s1's alone."""
    from streams.offline.simulate import write_events_csv

    import_owners(kafka_bootstrap, redis_url, names, tmp_path, monkeypatch)
    members_topic = f"mem-{unique_name}"
    events = sorted([*history(), *(Event("s1", _day(d, 20), "view", f"v-s1-{d}", 0.0) for d in range(26))], key=EVENT_ORDER)
    w = Worker(kafka_bootstrap, redis_url, names, tmp_path / "worker.log",
               env={"CHURNWATCH_IDLE_PARTITION_MS": "1000", "CHURNWATCH_BATCH_MAX_RECORDS": "200",
                    "CHURNWATCH_PARTITIONS": str(PARTITIONS), "CHURNWATCH_MEMBER_ALERTS": "separate",
                    "CHURNWATCH_TOPIC_MEMBER_ALERTS": members_topic}).start()
    try:
        replay_in_phases(kafka_bootstrap, redis_url, names["events"], events, w)
        wait_for("umbrella's two reminders", lambda: sum(a.get("kind") == "trial_ending" for _, a in read_topic(
            kafka_bootstrap, names["alerts"], PARTITIONS)) >= 2, workers=[w])
        routed = metric(w, "churnwatch_member_alerts_routed_total")
    finally:
        assert w.stop() == 0, w.output()[-3000:]
    on_alerts = [a for _, a in read_topic(kafka_bootstrap, names["alerts"], PARTITIONS)]
    on_members = [a for _, a in read_topic(kafka_bootstrap, members_topic, PARTITIONS)]
    assert {(a["account_id"], a["kind"]) for a in on_alerts if "account_id" in a} == {
        ("acme", "account_at_risk"), ("globex", "account_at_risk"), ("initech", "account_churned"),
        ("umbrella", "account_at_risk"), ("umbrella", "trial_ending")}, "the account alerts as without the setting"
    users = [a for a in on_alerts if "user_id" in a]
    assert {a["user_id"] for a in users} == {"s1"} and "at_risk" in {a["kind"] for a in users}
    assert on_members and all("user_id" in a for a in on_members)
    assert {"a3", "a4", "a5"} <= {a["user_id"] for a in on_members} and "s1" not in {a["user_id"] for a in on_members}
    assert routed == len({a["alert_id"] for a in on_members})
    assert f"user alerts of account members go to {members_topic}, not to {names['alerts']}" in w.output()

    csv_path = tmp_path / "events.csv"
    write_events_csv(csv_path, events, accounts=True)
    files = {}
    for mode in ("alerts", "separate"):
        files[mode] = tmp_path / f"{mode}.jsonl"
        assert main(["backtest", "--events", str(csv_path), "--as-of", "2026-01-08/2026-03-05/7d", "--out",
                     str(tmp_path / f"{mode}.csv"), "--alerts-out", str(files[mode]), "--member-alerts", mode,
                     "--jobs", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    backtest = {a["alert_id"]: a for a in map(orjson.loads, files["alerts"].read_text().splitlines())}
    assert all(backtest.get(a["alert_id"]) == a for a in users + on_members), "the same alerts, ids and content"
    apart = [orjson.loads(line) for line in files["separate"].read_text().splitlines()]
    assert {a["user_id"] for a in apart} == {"s1"} and {a["alert_id"] for a in users} <= {a["alert_id"] for a in apart}
    left_out = len(backtest) - len(apart)
    assert f"({left_out} user alerts of account members left out: CHURNWATCH_MEMBER_ALERTS=separate puts them on " in out
