"""The product's vocabulary in the model file: renames, roles, and the file's validation (QA7 H3, M2, L1).

- H3: the renames of ``--config`` (``[event_types]``) travel in the model file (``event_types``),
  so every reader of events under the model applies them; a model without renames keeps its file
  and id; ``backtest --config`` that says otherwise than the model is refused in one line.
- M2: ``train`` says which role no event matched, and roles are declared in ``--config``'s ``[roles]``.
- L1: a model file's roles must be a table of lists of names, one role a name; the risk model
  (``risk_weights``, ``risk_intercept``) must be in the file.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from models.model import ChurnModel, load_model, same_vocabulary
from streams.cli import main
from streams.offline.simulate import generate
from streams.worker.store import model_id

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_the_renames_round_trip_through_the_model_file(tmp_path: Path) -> None:
    model = load_model().with_(event_types={" Checkout_Completed": "Purchase", "account_closed": "cancel"})
    assert dict(model.event_types) == {"checkout_completed": "purchase", "account_closed": "cancel"}, "as the readers apply them"
    assert model.type_map.canonical("Checkout_Completed") == "purchase" == model.type_map.canonical("checkout_completed ")
    path = tmp_path / "m.json"
    model.save(path)
    assert json.loads(path.read_text())["event_types"] == {"account_closed": "cancel", "checkout_completed": "purchase"}
    back = load_model(path)
    assert back == model and back.type_map == model.type_map and model_id(back) == model_id(model)
    assert not same_vocabulary(back, load_model()), "a worker may not swap in a model that reads names otherwise"
    # No renames: the field is left out, so the shipped default's file and id stay what they were,
    # and a file written before the field loads.
    default_text = load_model().to_json()
    assert "event_types" not in default_text and ChurnModel.from_json(default_text).event_types == {}
    with pytest.raises(ValueError, match="renames 'buy' twice"):
        ChurnModel(event_types={"Buy": "purchase", "buy": "order"})


def _bad_model(tmp_path: Path, name: str, change) -> Path:  # type: ignore[no-untyped-def]
    data = json.loads(load_model().to_json())
    change(data)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("name, change, expected", [
    ("roles_list", lambda d: d.update(roles=["purchase"]), "roles must be a table (a JSON object), got list"),
    ("roles_str", lambda d: d["roles"].update(purchase="checkout_completed"), "roles.purchase must be a list of event names, got a str"),
    ("role_overlap", lambda d: d["roles"]["cancel"].append("purchase"), "event name 'purchase' is in two roles (cancel, purchase)"),
    ("role_case", lambda d: d["roles"]["purchase"].append("Checkout_Completed"), "roles.purchase names 'Checkout_Completed'"),
    ("no_weights", lambda d: d.pop("risk_weights"), "model file has no risk_weights"),
    ("no_intercept", lambda d: d.pop("risk_intercept"), "model file has no risk_intercept"),
    ("renames_list", lambda d: d.update(event_types=["a"]), "event_types must be a table"),
])
def test_a_bad_model_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    """QA7 L1: a list of roles gave a traceback; a role's names as a string were read letter by
    letter; a name in two roles and a file without its risk weights were accepted."""
    path = _bad_model(tmp_path, name, change)
    events = tmp_path / "e.csv"
    events.write_text("user_id,ts,event_type\nu1,2026-01-01T00:00:00Z,view\n")
    assert main(["backtest", "--events", str(events), "--model", str(path), "--as-of", "2026-01-02", "--out", str(tmp_path / "b.csv")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"model file {path}: not a churnwatch model" in line and expected in line, line


def _product_history(tmp_path: Path) -> Path:
    """A simulated history under a product's own names: purchases are ``checkout_completed``."""
    events, _ = generate(seed=13, n_users=80, start_ms=START_MS, days=63)
    path = tmp_path / "events.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("user_id", "ts", "event_type", "amount", "event_id"))
        for ev in events:
            name = "checkout_completed" if ev.type == "purchase" else ev.type
            w.writerow((ev.user_id, ev.ts_ms, name, ev.amount if ev.type == "purchase" else "", ev.event_id))
    return path


_TRAIN = ["--churn-after", "14d", "--horizon", "14d", "--as-of", "2026-01-22/2026-02-05/7d", "--alert-share", "0.2"]


def test_train_says_which_role_matched_nothing_and_takes_roles_from_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA7 M2: a product whose purchase and cancel names are not among the defaults trained
    without a word (its purchases plain activity, no purchase model); roles could be declared
    only through an edited --base-model, which no doc said."""
    events = _product_history(tmp_path)
    assert main(["train", "--events", str(events), *_TRAIN, "--out", str(tmp_path / "plain.json")]) == 0
    out = capsys.readouterr().out
    said = [line for line in out.splitlines() if line.startswith("no event matched the")]
    assert len(said) == 2, out
    assert said[0].startswith("no event matched the purchase role (names looked for: purchase, order, payment, checkout")
    assert "[roles] purchase = [" in said[0] and "[roles] cancel = [" in said[1]

    config = tmp_path / "roles.toml"
    config.write_text('[roles]\npurchase = ["checkout_completed"]\n', encoding="utf-8")
    assert main(["train", "--events", str(events), *_TRAIN, "--config", str(config), "--out", str(tmp_path / "roles.json")]) == 0
    out = capsys.readouterr().out
    assert [line.split(" role ")[0] for line in out.splitlines() if line.startswith("no event matched")] == ["no event matched the cancel"]
    model = load_model(tmp_path / "roles.json")
    assert list(model.roles["purchase"]) == ["checkout_completed"] and list(model.roles["cancel"]) == list(ChurnModel().roles["cancel"])
    assert model.training["roles_matched"]["purchase"] > 0 and "checkout_completed" in model.tracked_types

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "[roles]" in capsys.readouterr().out


def test_backtest_refuses_a_config_that_renames_otherwise_than_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "e.csv"
    events.write_text("user_id,ts,event_type,amount\nu1,2026-01-01T00:00:00Z,checkout_completed,5\nu1,2026-01-03T00:00:00Z,view,\n")
    model = tmp_path / "m.json"
    load_model().with_(event_types={"checkout_completed": "purchase"}).save(model)
    other, same, roles = tmp_path / "other.toml", tmp_path / "same.json", tmp_path / "roles.toml"
    other.write_text('[event_types]\ncheckout_completed = "order"\n')
    same.write_text(json.dumps({"event_types": {"Checkout_Completed": "purchase"}}))
    roles.write_text('[roles]\ncancel = ["account_closed"]\n')
    def row(argv: list[str]) -> str:
        assert main(["backtest", "--events", str(events), "--as-of", "2026-01-04", "--out", str(tmp_path / "b.csv"), "--no-progress", *argv]) == 0
        return (tmp_path / "b.csv").read_text().splitlines()[1]

    argv = ["backtest", "--events", str(events), "--model", str(model), "--as-of", "2026-01-04", "--out", str(tmp_path / "b.csv"), "--no-progress"]
    assert main([*argv, "--config", str(other)]) == 2
    assert "carries its own renames (checkout_completed -> purchase)" in _one_line(capsys.readouterr().err)
    assert main([*argv, "--config", str(roles)]) == 2
    refused = _one_line(capsys.readouterr().err)
    assert "a model's roles are fixed in its file" in refused and f"--config {roles} --no-fit --out m.json" in refused
    carried = row(["--model", str(model)])
    assert carried == row(["--model", str(model), "--config", str(same)]), "a config that repeats the model's renames"
    assert carried == row(["--config", str(same)]), "the model's renames apply without --config, as the default's with it"
    plain = row([])
    # the renamed purchase is read as one: a buyer's risk is lower (the default's buyer effect); a
    # new user's action is onboard either way (QA17 F6), so the action no longer tells them apart
    assert carried != plain and float(carried.split(",")[2]) < float(plain.split(",")[2]), (carried, plain)


def test_learn_reads_with_the_model_in_use_renames_only(tmp_path: Path) -> None:
    """``learn``'s successor keeps its predecessor's vocabulary, renames included (the workers read
    with the model's renames): a --config renaming otherwise, or renaming under a model without
    renames, is refused (streams.cli.learn uses this rule)."""
    from streams.offline.replay import load_config, with_config

    config = tmp_path / "c.toml"
    config.write_text('[event_types]\ncheckout_completed = "purchase"\n')
    loaded = load_config(config)
    carrying = load_model().with_(event_types={"checkout_completed": "purchase"})
    assert with_config(carrying, loaded, "m") is carrying and with_config(carrying, None, "m") is carrying
    assert with_config(load_model(), loaded, "m") != load_model(), "backtest applies it to a model without renames; learn refuses that"


# -- review 10 (A1, A2, A4, A5, A7) ------------------------------------------------------------------------


def _one_event_csv(tmp_path: Path) -> Path:
    events = tmp_path / "e.csv"
    events.write_text("user_id,ts,event_type\nu1,2026-01-01T00:00:00Z,view\n")
    return events


@pytest.mark.parametrize("name, change, expected", [
    ("rename_to_subscription", lambda d: d.update(event_types={"billing": "subscription"}),
     "event_types renames 'billing' to 'subscription': 'subscription' is a billing statement's record"),
    ("rename_subscription", lambda d: d.update(event_types={"subscription": "billing"}),
     "event_types renames 'subscription' to 'billing'"),
    ("subscription_role", lambda d: d["roles"].update(subscription=["billing"]), "roles.subscription is ['billing']: only 'subscription' plays it"),
    ("subscription_role_more", lambda d: d["roles"].update(subscription=["subscription", "billing"]), "roles.subscription is ['subscription', 'billing']"),
    ("tracked_case", lambda d: d.update(tracked_types=["view", "Page_View"]), "tracked_types names 'Page_View': event names are non-empty, trimmed and lower-case"),
    ("tracked_str", lambda d: d.update(tracked_types="view"), "tracked_types must be a list of event names, got a str"),
])
def test_review10_a_model_file_renaming_subscription_or_naming_unreadable_names_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    """Review 10 A1, A2, A7: ``subscription`` is a billing statement's record, read under that name
    only (the worker's decoder, ``publish --file`` and ``report`` take no rename table): a model that
    renames it, renames onto it or lets another name play its role diverged between the stream,
    ``backtest`` and ``report``; a ``tracked_types`` name in upper case never matched an event. All
    were accepted without a word."""
    path = _bad_model(tmp_path, name, change)
    events = _one_event_csv(tmp_path)
    assert main(["backtest", "--events", str(events), "--model", str(path), "--as-of", "2026-01-02", "--out", str(tmp_path / "b.csv")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"model file {path}: not a churnwatch model" in line and expected in line, line


@pytest.mark.parametrize("config, expected", [
    ('[event_types]\nbilling = "subscription"\n', "event_types renames 'billing' to 'subscription'"),
    ('[event_types]\nSubscription = "billing"\n', "event_types renames 'subscription' to 'billing'"),
    ('[roles]\nsubscription = ["billing"]\n', "roles.subscription is ['billing']"),
])
def test_review10_train_refuses_a_config_that_renames_subscription_or_gives_its_role_away(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, expected: str) -> None:
    """Review 10 A1/A2: with ``[event_types] billing = "subscription"`` a ``billing`` row was a
    statement for ``train`` and ``backtest``, a ``bad_subscription`` rejection in the stream (the
    record ``publish --file`` sent carried no status, plan or MRR) and nothing in ``report``; with
    ``[roles] subscription = ["billing"]`` the real statements counted as usage. One line, exit 2."""
    path = tmp_path / "names.toml"
    path.write_text(config, encoding="utf-8")
    out = tmp_path / "m.json"
    assert main(["train", "--events", str(_one_event_csv(tmp_path)), "--config", str(path), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"config {path}:" in line and expected in line and "send billing statements as type 'subscription'" in line, line
    assert not out.exists()
    # A rename of the literal name to itself (case only) is no rename: accepted.
    assert ChurnModel(event_types={"Subscription": "subscription"}).type_map.canonical("SUBSCRIPTION") == "subscription"


def test_review10_role_names_compare_as_sets_but_negative_keeps_its_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Review 10 A4: re-ordering the purchase or cancel names in a retrain's config demanded a
    ``--rebuild-state`` and made ``backtest --config`` refuse the model; only ``negative``'s order
    means something (a name's position is its bit in the state's mask)."""
    from streams.worker.model_record import layout_refusal

    base = ChurnModel(roles={"purchase": ["buy", "order"], "cancel": ["bye", "close"], "subscription": ["subscription"],
                             "negative": ["dislike", "block"]})
    shuffled = base.with_(roles={"purchase": ["order", "buy"], "cancel": ["close", "bye"], "subscription": ["subscription"],
                                 "negative": ["dislike", "block"]})
    negative = base.with_(roles={**dict(base.roles), "negative": ["block", "dislike"]})
    assert same_vocabulary(base, shuffled) and not same_vocabulary(base, negative)
    assert layout_refusal(shuffled, "b@2", "a@1", base) == "" and layout_refusal(negative, "b@2", "a@1", base) != ""

    model = tmp_path / "m.json"
    base.save(model)
    events = _one_event_csv(tmp_path)
    argv = ["backtest", "--events", str(events), "--model", str(model), "--as-of", "2026-01-02", "--out", str(tmp_path / "b.csv"), "--no-progress"]
    same, other = tmp_path / "same.toml", tmp_path / "other.toml"
    same.write_text('[roles]\npurchase = ["order", "buy"]\ncancel = ["close", "bye"]\n', encoding="utf-8")
    other.write_text('[roles]\nnegative = ["block", "dislike"]\n', encoding="utf-8")
    assert main([*argv, "--config", str(same)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main([*argv, "--config", str(other)]) == 2
    assert "declares roles.negative = ['block', 'dislike']" in _one_line(capsys.readouterr().err)


def test_review10_a_config_with_other_tables_warns_and_a_misspelt_one_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """Review 10 A5: a --config file with any other top-level key (a ``description``, a tool's own
    table) was refused by train, backtest and learn since the file carried roles; before, other
    keys were ignored. Now they are ignored with one WARNING, and a key that looks like a misspelt
    ``event_types`` or ``roles`` is refused ("did you mean"): ignored, its renames would be missing."""
    from streams.offline.replay import load_config

    extra = tmp_path / "extra.toml"
    extra.write_text('description = "our names"\n[event_types]\ncheckout_completed = "purchase"\n[dbt]\nmodel = "x"\n', encoding="utf-8")
    with caplog.at_level("WARNING", logger="streams.offline.replay"):
        loaded = load_config(extra)
    assert loaded is not None and loaded.event_types == {"checkout_completed": "purchase"}
    warned = [r.getMessage() for r in caplog.records if r.name == "streams.offline.replay"]
    assert warned == [f"config {extra}: ignoring 'dbt', 'description' (churnwatch reads only 'event_types', 'roles', 'users' and 'calendar')"]

    events = _one_event_csv(tmp_path)
    argv = ["backtest", "--events", str(events), "--as-of", "2026-01-02", "--out", str(tmp_path / "b.csv"), "--no-progress"]
    assert main([*argv, "--config", str(extra)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    for text, key, meant in (('[event_type]\ncheckout_completed = "purchase"\n', "event_type", "event_types"),
                             ('[Roles]\ncancel = ["account_closed"]\n[event_types]\na = "b"\n', "Roles", "roles")):
        typo = tmp_path / "typo.toml"
        typo.write_text(text, encoding="utf-8")
        assert main([*argv, "--config", str(typo)]) == 2
        assert f"unknown table {key!r}: did you mean {meant!r}?" in _one_line(capsys.readouterr().err)
    only = tmp_path / "only.json"
    only.write_text(json.dumps({"description": "nothing for churnwatch"}))
    assert main([*argv, "--config", str(only)]) == 2
    assert "needs an 'event_types' table" in _one_line(capsys.readouterr().err)


def test_a_config_role_taking_a_name_another_role_keeps_says_how_to_fix_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA10 F12: ``[roles] cancel = ["uninstall"]`` was refused "in two roles (cancel, negative)" with
    no word that ``negative`` keeps its default names (``uninstall`` among them) unless declared; the
    line now says which role to declare without the name, and the list it would keep."""
    path = tmp_path / "names.toml"
    path.write_text('[roles]\ncancel = ["uninstall"]\n', encoding="utf-8")
    out = tmp_path / "m.json"
    assert main(["train", "--events", str(_one_event_csv(tmp_path)), "--config", str(path), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "event name 'uninstall' is in two roles (cancel, negative)" in line, line
    kept = [n for n in ChurnModel().roles["negative"] if n != "uninstall"]
    fix = "declare roles.negative without it, e.g. negative = [" + ", ".join(f'"{n}"' for n in kept) + "]"
    assert fix in line, line
    assert not out.exists()
    fixed = tmp_path / "fixed.toml"  # the fix as printed is accepted
    fixed.write_text('[roles]\ncancel = ["uninstall"]\n' + fix.split("e.g. ", 1)[1] + "\n", encoding="utf-8")
    from streams.cli.train import with_vocabulary
    from streams.offline.replay import load_config
    roles = with_vocabulary(ChurnModel(), load_config(fixed)).roles
    assert list(roles["cancel"]) == ["uninstall"] and list(roles["negative"]) == kept


def test_train_reports_tracked_and_left_out_types_role_names_and_a_fit_that_did_not_converge(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """QA10 F7/F9: train printed no type name, no role's names, and hid a fit that did not converge
    (``training.fits.purchase_bgnbd.converged: false`` only in the model file)."""
    import streams.cli.train as cli_train

    events = _product_history(tmp_path)
    counts: dict[str, int] = {}
    with open(events, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            counts[row["event_type"]] = counts.get(row["event_type"], 0) + 1
    config = tmp_path / "roles.toml"
    config.write_text('[roles]\npurchase = ["checkout_completed"]\n', encoding="utf-8")
    real = cli_train.train

    def unconverged(*args, **kwargs):  # type: ignore[no-untyped-def]
        model, report = real(*args, **kwargs)
        report["fits"]["visit_mbgnbd"]["converged"] = False  # as the optimiser reports one that stopped short
        return model, report

    monkeypatch.setattr(cli_train, "train", unconverged)
    out_path = tmp_path / "m.json"
    assert main(["train", "--events", str(events), *_TRAIN, "--types", "1", "--config", str(config), "--out", str(out_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    model = load_model(out_path)
    tracked = list(model.tracked_types)
    assert len(tracked) == 1
    assert f"tracked types (1): " + ", ".join(f"{t} {counts[t]:,}" for t in tracked) in lines, lines
    roled = {n for names in model.roles.values() for n in names}
    left = sorted((n for n in counts if n not in tracked and n not in roled), key=lambda n: (-counts[n], n))
    assert left, "the history has more names than one"
    assert "left out (counted as plain activity only): " + ", ".join(f"{n} {counts[n]:,}" for n in left) in lines, lines
    assert f"role purchase: checkout_completed {counts['checkout_completed']:,}" in lines, lines
    said = [line for line in lines if line.startswith("fit ")]
    assert said == [line for line in said if "visit_mbgnbd did not converge" in line] and len(said) == 1, lines
    assert "(training.fits.visit_mbgnbd.converged: false)" in said[0]


def test_train_warns_in_one_line_of_a_tracked_type_users_do_once_and_says_how_to_leave_it_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A product's ``signup`` (one a user, on the first day) is among the types used by the most
    users, so train tracked it without a word: a lifecycle step, no habit of use. The report
    says so in one line, naming the option that leaves it out; with it, no warning."""
    events = _product_history(tmp_path)
    with open(events, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    first: dict[str, dict[str, str]] = {}
    for row in rows:
        if row["user_id"] not in first or int(row["ts"]) < int(first[row["user_id"]]["ts"]):
            first[row["user_id"]] = row
    with open(events, "a", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        for user, row in first.items():
            w.writerow((user, row["ts"], "signup", "", f"signup-{user}"))
    config = tmp_path / "roles.toml"
    config.write_text('[roles]\npurchase = ["checkout_completed"]\n', encoding="utf-8")
    assert main(["train", "--events", str(events), *_TRAIN, "--config", str(config), "--out", str(tmp_path / "m.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "signup" in load_model(tmp_path / "m.json").tracked_types
    said = [line for line in lines if "one-time" in line]
    assert said == [f"WARNING: one-time steps tracked: signup (100% of its {len(first)} users did it once): a step done "
                    "once is no habit of use: its count tells when the user took that step, not how they use the "
                    "product, and it takes a slot from a type used again and again; to leave it out, add it to --config's "
                    "[roles] ignore (e.g. ignore = [\"signup\"], with the names there already; it then counts "
                    "nowhere, not even as a visit) or train --base-model with a model file whose tracked_types "
                    "lists the types to track (README, \"The product's vocabulary\")"], lines

    config.write_text('[roles]\npurchase = ["checkout_completed"]\nignore = ["signup"]\n', encoding="utf-8")
    assert main(["train", "--events", str(events), *_TRAIN, "--config", str(config), "--out", str(tmp_path / "n.json")]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if "one-time" in line]
    assert "signup" not in load_model(tmp_path / "n.json").tracked_types


def test_qa21_the_readmes_unsubscribe_roles_keep_the_default_cancel_names_and_read_an_opt_out_as_nothing(tmp_path: Path) -> None:
    """README "Check the defaults": the [roles] block given for an email opt-out sent as ``unsubscribe``
    (QA21 F6: 35 of 35 loyal customers of a shop churned at their opt-out) must leave every other
    default cancel name a cancellation, and make ``unsubscribe`` neither a cancellation nor a visit."""
    from models.vocabulary import DEFAULT_ROLES
    from streams.cli.train import with_vocabulary
    from streams.offline.replay import load_config

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("**`unsubscribe` is a cancellation, not an email opt-out.**", 1)[1]
    block = section.split("```toml", 1)[1].split("```", 1)[0]
    path = tmp_path / "optout.toml"
    path.write_text(block, encoding="utf-8")
    model = with_vocabulary(load_model(None), load_config(path))
    assert set(model.roles["cancel"]) == set(DEFAULT_ROLES["cancel"]) - {"unsubscribe"}
    assert list(model.roles["ignore"]) == ["unsubscribe"]
