"""One currency (QA9 M1): an amount stated in another currency than the deployment's is refused,
by the worker's decoder (``bad_subscription`` / ``bad_amount``) and by the commands reading files
(``publish``, ``report``, ``backtest``) with the line, never summed with the rest.

The worker's dead-lettering through the real broker and valkey is in tests/test_revenue_live.py
(``test_a_statement_in_another_currency_is_dead_lettered_by_the_worker``).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.settings import Settings, SettingsError
from streams.worker.codec import Decoder

NOW_MS = 1_800_000_000_000
_SUB = {"user_id": "x1", "type": "subscription", "ts": "2026-11-02T00:00:00Z", "account_id": "ax1", "status": "active",
        "plan": "Pro", "mrr": 40}
_BUY = {"user_id": "x2", "type": "purchase", "ts": "2026-11-02T00:00:00Z", "amount": 12.5}
CSV = ("user_id,ts,event_type,amount,account_id,status,plan,mrr,currency\n"
       "x3,2026-11-02T00:00:00Z,subscription,,ax3,active,Pro,49.99,usd\n"
       "x1,2026-11-02T00:00:00Z,subscription,,ax1,active,Pro,40,EUR\n"
       "x2,2026-11-02T00:00:00Z,subscription,,ax2,active,Pro,5000,JPY\n")


def _decode(obj: dict[str, object], currency: str = "") -> object:
    return Decoder(currency=currency).decode(orjson.dumps(obj), NOW_MS)


def test_the_deployment_currency_refuses_another_on_statements_and_purchases() -> None:
    eur = _decode({**_SUB, "currency": "EUR"}, "USD")
    assert (eur.reason, eur.detail) == ("bad_subscription", "currency EUR is not the deployment currency USD "
                                        "(CHURNWATCH_CURRENCY): convert amounts to USD before sending")
    jpy = _decode({**_BUY, "currency": "jpy"}, "USD")
    assert jpy.reason == "bad_amount" and "JPY" in jpy.detail and "USD" in jpy.detail
    assert _decode({**_SUB, "currency": "usd"}, "USD").subscription.mrr_cents == 4000, "the code in any case"
    assert _decode(_SUB, "USD").subscription.mrr_cents == 4000, "no currency stated: the deployment's"
    view = _decode({"user_id": "x4", "type": "view", "ts": "2026-11-02T00:00:00Z", "currency": "JPY"}, "USD")
    assert view.type == "view", "no amount, no statement: the field is ignored, as any other"


def test_without_a_setting_the_currency_field_is_ignored_as_before_it_existed() -> None:
    """Review 16 M-2: unset (the default), a free-text currency from a producer of before the
    setting ("€", "US$") was dead-lettered with the whole event, its activity lost."""
    assert _decode({**_SUB, "currency": "EUR"}).subscription.mrr_cents == 4000
    assert _decode({**_SUB, "currency": "€"}).subscription.mrr_cents == 4000
    for odd in ("€", "US$", 978, ["USD"]):
        assert _decode({**_BUY, "currency": odd}).amount == 12.5, odd
    assert _decode({**_BUY, "currency": 978}, "USD").detail == "currency is an int, expected a 3-letter ISO 4217 code"
    assert _decode({**_BUY, "currency": "US$"}, "USD").reason == "bad_amount", "set: refused, the whole event"


def test_the_setting_is_a_code_kept_upper_case() -> None:
    assert Settings.from_env({"CHURNWATCH_CURRENCY": " usd"}).currency == "USD"
    assert Settings.from_env({}).currency == ""
    with pytest.raises(SettingsError, match="CHURNWATCH_CURRENCY: currency 'dollars' is not a 3-letter ISO 4217 code"):
        Settings.from_env({"CHURNWATCH_CURRENCY": "dollars"})


def _main(argv: list[str], monkeypatch: pytest.MonkeyPatch, currency: str | None) -> int:
    from streams.cli import main

    if currency is None:
        monkeypatch.delenv("CHURNWATCH_CURRENCY", raising=False)
    else:
        monkeypatch.setenv("CHURNWATCH_CURRENCY", currency)
    return main(argv)


def test_report_refuses_a_row_in_another_currency_with_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cur.csv"
    path.write_text(CSV)
    argv = ["report", "--events", str(path), "--from", "2026-11-01", "--to", "2026-12-01"]
    assert _main(argv, monkeypatch, "USD") == 2
    err = capsys.readouterr().err
    assert "cur.csv line 3: currency EUR is not the deployment currency USD" in err and "(the workers would dead-letter it: bad_subscription)" in err
    path.write_text(CSV.replace("EUR", "usd").replace("JPY", "USD"))
    assert _main(argv + ["--json"], monkeypatch, "USD") == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["currency"] == "USD" and out["periods"][0]["new"] == "5089.99"
    assert _main(argv, monkeypatch, None) == 0, "unset: any code, all taken as one currency"
    assert "money in the file's currency (one currency; CHURNWATCH_CURRENCY names it)" in capsys.readouterr().out
    path.write_text(CSV.replace("JPY", "yen ¥"))  # from the first file: EUR is a code, "yen ¥" is not
    assert _main(argv, monkeypatch, None) == 0, "unset: the column is ignored, as the stream ignores the field"
    capsys.readouterr()
    assert _main(argv, monkeypatch, "USD") == 2
    assert "cur.csv line 3: currency EUR is not the deployment currency USD" in capsys.readouterr().err


def test_backtest_refuses_a_purchase_in_another_currency_with_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "buys.csv"
    path.write_text("user_id,ts,event_type,amount,currency\nu1,2026-11-01T00:00:00Z,view,,\n"
                    "u1,2026-11-02T00:00:00Z,purchase,12.50,GBP\n")
    argv = ["backtest", "--events", str(path), "--as-of", "2026-11-10", "--out", str(tmp_path / "s.csv"), "--jobs", "1"]
    assert _main(argv, monkeypatch, "EUR") == 2
    err = capsys.readouterr().err
    assert "buys.csv line 3: currency GBP is not the deployment currency EUR" in err and "(the workers would dead-letter it: bad_amount)" in err
    assert _main(argv, monkeypatch, "gbp") == 0


def test_publish_checks_the_currency_of_json_lines_and_csv_rows_before_sending(tmp_path: Path) -> None:
    from streams.publisher import read_timed_records

    usd = Settings(currency="USD")
    lines = tmp_path / "bad.jsonl"
    lines.write_text(orjson.dumps({**_SUB, "currency": "USD"}).decode() + "\n" + orjson.dumps({**_BUY, "currency": "EUR"}).decode() + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl line 2: bad amount: currency EUR is not the deployment currency USD"):
        list(read_timed_records(lines, usd))
    rows = tmp_path / "cur.csv"
    rows.write_text(CSV)
    with pytest.raises(ValueError, match=r"cur\.csv line 3: currency EUR is not the deployment currency USD"):
        list(read_timed_records(rows, usd))
    assert len(list(read_timed_records(rows, Settings()))) == 3, "unset: codes are taken"
    rows.write_text(CSV.replace("JPY", "US$"))
    assert len(list(read_timed_records(rows, Settings()))) == 3, "unset: any text is ignored"
