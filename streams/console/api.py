"""The console's JSON API, ``/api/v1/...``, and its OpenAPI document at ``/openapi.json``.

Read-only; when ``CHURNWATCH_CONSOLE_TOKEN`` is set every API call needs ``Authorization: Bearer
<token>``. Errors are JSON, ``{"error": {"status", "code", "message"}}``, with 400 (a parameter
it cannot use, or one it does not read: never ignored), 401 (token), 404 (unknown user, owner or account; ``no_activity``: a user with
billing statements only, streams.views.NoActivityYet) and 503 (no worker has written any state yet). The document is written by hand next to the handlers it describes and tested
against them (tests/test_console_api.py, schemathesis).
"""

from __future__ import annotations

import hmac
import re
from typing import Any, Final, get_args

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.account_health import ACCOUNT_ACTIONS, ACCOUNT_STAGES
from models.actions import Action
from models.rfm import SEGMENTS
from models.state import STAGES
from streams.console.data import (LISTS, BadRequest, Filters, NotFound, account_dict, account_view, at_risk_page, churn_view, ident_of,
                                  owner_book, revenue_view, user_view)
from streams.console.deps import REDIS_DOWN, Deps, Unavailable
from streams.views import NoActivityYet
from streams.worker.store import UnreadableState

__all__ = ["routes", "openapi", "error_response", "API_VERSION"]

API_VERSION = "1.2.0"
_MONEY = ("start_mrr", "new", "expansion", "contraction", "churned", "reactivation", "end_mrr", "net_new_mrr")
_CHURN_SPLIT = ("churned_voluntary", "churned_involuntary")  # of churned: after failed payments and the rest (QA22a F5)
ACTIONS = get_args(Action)
_PERIOD = re.compile(r"^([0-9]{1,3})d?$")


class _JSON(JSONResponse):
    """orjson instead of json: a page of 50 rows with their weekly trend is ~700 small objects."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="churnwatch"'} if status == 401 else None
    return _JSON({"error": {"status": status, "code": code, "message": message}}, status_code=status, headers=headers)


def _authorized(request: Request, token: str) -> bool:
    if not token:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _endpoint(handler, params: tuple[str, ...] = (), why: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """Token check, then the query parameters (only ``params``, the ones the handler reads:
    ``_only``), then the handler; the console's errors become JSON 4xx/503."""

    async def endpoint(request: Request) -> Response:
        deps: Deps = request.app.state.deps
        if not _authorized(request, deps.settings.console_token):
            return error_response(401, "unauthorized", "this API needs 'Authorization: Bearer <token>' (CHURNWATCH_CONSOLE_TOKEN)")
        try:
            _only(request, params, why or {})
            return _JSON(await handler(request, deps))
        except BadRequest as exc:
            return error_response(400, "bad_request", str(exc))
        except NotFound as exc:
            return error_response(404, "not_found", str(exc))
        except NoActivityYet as exc:  # the user page: billing statements only, nothing to score yet
            return error_response(404, "no_activity", str(exc))
        except UnreadableState as exc:  # the user page: see _errors for why 409
            return error_response(409, "unreadable_state", str(exc))
        except Unavailable as exc:
            return error_response(503, "no_data", str(exc))
        except REDIS_DOWN as exc:
            return error_response(503, "redis_unavailable", f"cannot read the state in Redis: {type(exc).__name__}")

    return endpoint


def _choice(request: Request, name: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
    value = request.query_params.get(name) or default
    if value is not None and value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}, got {value[:40]!r}")
    return value


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number {lo}-{hi}, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be {lo}-{hi}, got {value}")
    return value


async def at_risk(request: Request, deps: Deps) -> dict[str, Any]:
    owner = await deps.owners.check(request.query_params.get("owner"))
    list_name = _choice(request, "list", LISTS, "save")
    limit = _int(request, "limit", 50, 1, 500)
    now_ms = await deps.now_ms()
    from streams.timefmt import format_ts

    if owner != deps.owners.ALL:  # the owner's book: accounts, as `churnwatch top --owner NAME --json`
        segment = request.query_params.get("segment") or None
        if segment is not None and len(segment) > 100:
            raise BadRequest(f"segment must be at most 100 characters, got {len(segment)}")
        filters = Filters(_choice(request, "stage", ACCOUNT_STAGES), segment, _choice(request, "action", ACCOUNT_ACTIONS))
        book = await owner_book(deps.settings, deps.owners, owner, list_name, limit, now_ms,  # type: ignore[arg-type]
                                request.query_params.get("cursor") or None, filters)
        return {"as_of": format_ts(now_ms), "owner": owner, "list": list_name, "items": [r.to_dict() for r in book.accounts],
                "next_cursor": book.next_cursor, "model": deps.model_info()}
    filters = Filters(_choice(request, "stage", STAGES), _choice(request, "segment", SEGMENTS), _choice(request, "action", ACTIONS))
    page = await at_risk_page(deps.store, deps.model, now_ms, list_name, limit,  # type: ignore[arg-type]
                              request.query_params.get("cursor") or None, filters, owner)
    return {"as_of": format_ts(page.as_of_ms), "owner": page.owner, "list": page.list,
            "items": [r.to_dict() for r in page.rows], "next_cursor": page.next_cursor, "model": deps.model_info()}


async def user(request: Request, deps: Deps) -> dict[str, Any]:
    from streams.console.data import point_dict

    now_ms = await deps.now_ms()  # first: it also refreshes deps.model (a successor adopted since)
    view = await user_view(deps.store, deps.model, now_ms, ident_of(request, "user_id"))
    body = view.report(await deps.owners.table() if view.account_id else {}).to_dict()
    from models.ranking import activity_by_kind

    sig = view.scores.signals
    body["activity_28d"] = {k: round(n, 1) for k, n in activity_by_kind(sig, deps.model)} if sig is not None else {}
    body["history"] = [point_dict(p) for p in view.history]
    body["alerts"] = view.alerts
    body["model"] = deps.model_info()
    return body


async def account(request: Request, deps: Deps) -> dict[str, Any]:
    now_ms = await deps.now_ms()
    report, state, members, alerts, counted = await account_view(deps.settings, deps.owners, ident_of(request, "account_id"), now_ms, deps.model)
    return {**account_dict(report, state, members, report.as_of_ms, alerts, counted), "model": deps.model_info()}


#: The parameters each endpoint reads: any other is refused (QA9 M5: ``/api/v1/churn?owner=alice`` was
#: ignored and the global figures came back as if they were alice's; review 16 L-4: the same for a
#: typo on every endpoint, ``/api/v1/at-risk?ownr=alice`` returning everyone's rows).
_AT_RISK_PARAMS = ("owner", "list", "limit", "cursor", "segment", "stage", "action")
_CHURN_PARAMS = ("period", "revenue_period")
_CHURN_WHY = {"owner": "the live figures are for all accounts; per owner, run "
                       "`churnwatch report --events FILE --accounts ACCOUNTS.csv --by-owner` (docs/REVENUE.md)"}


_CACHE_BUSTER: Final = "_"


def _only(request: Request, allowed: tuple[str, ...], why: dict[str, str]) -> None:
    """A 400 naming the first query parameter not in ``allowed`` (with ``why`` it is not, when said).
    ``_`` is let through: the cache-buster that browsers' HTTP helpers append (jQuery's ``cache:
    false`` sends ``_=<epoch ms>``) asks for nothing, so refusing it would break such a caller."""
    for name in request.query_params:
        if name not in allowed and name != _CACHE_BUSTER:
            takes = f"it takes {', '.join(allowed)}" if allowed else "it takes none"
            raise BadRequest(f"{request.url.path} has no parameter {name[:40]!r} ({takes})"
                             + (f": {why[name]}" if name in why else ""))


async def churn(request: Request, deps: Deps) -> dict[str, Any]:
    raw = request.query_params.get("period") or "30d"
    m = _PERIOD.match(raw)
    if not m:
        raise BadRequest(f"period must be a number of days like 30d, got {raw[:40]!r}")
    from models.revenue_ledger import PERIODS

    now_ms = await deps.now_ms()
    body = await churn_view(deps.store, now_ms, int(m.group(1)))
    body["revenue"] = await revenue_view(deps.store, deps.settings, now_ms,
                                         _choice(request, "revenue_period", PERIODS, "month") or "month")
    return body


async def owners(request: Request, deps: Deps) -> dict[str, Any]:
    return {"owners": await deps.owners.names()}


async def openapi_json(request: Request) -> Response:
    return _JSON(openapi())


routes = [
    Route("/openapi.json", openapi_json),
    Route("/api/v1/at-risk", _endpoint(at_risk, _AT_RISK_PARAMS)),
    Route("/api/v1/users", _endpoint(user, ("id",))),  # ?id=: an id that is a dot segment (data.ident_of)
    Route("/api/v1/users/{user_id:path}", _endpoint(user)),
    Route("/api/v1/accounts", _endpoint(account, ("id",))),
    Route("/api/v1/accounts/{account_id:path}", _endpoint(account)),
    Route("/api/v1/churn", _endpoint(churn, _CHURN_PARAMS, _CHURN_WHY)),
    Route("/api/v1/owners", _endpoint(owners)),
]


# -- the OpenAPI document ----------------------------------------------------------------------

_NUM = {"type": "number"}
_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_TEMP = {"type": "number", "description": "0-100: the chance in percent that the user is back, and for a repeat buyer buys "
         "again, within the model's horizon (models.temperature.p_back_within); the action and the reasons read it"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required if required is not None else list(props)}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(ref: str) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    # 409, not 500 or 503: the record is there (not 404) but damaged or of a newer format; no
    # retry helps, the user's next event starts it afresh
    text = {400: "a parameter it cannot use", 401: "missing or wrong bearer token", 404: "not found",
            409: "the user's (or account's) stored state cannot be read (damaged, or of a newer format): it starts afresh "
                 "at its next event (an account: at its next copy)",
            503: "no worker has written state yet, or Redis does not answer"}
    return {str(c): _error(text[c]) for c in codes}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``/api/v1``."""
    point = _obj({"week_start": {"type": "string", "format": "date"},
                  "week_end": {"type": "string", "format": "date",
                               "description": "the Monday after the week: health, temperature and risk are the state at its 00:00 UTC"},
                  "health": _NUM, "temperature": _TEMP, "risk": _NUM})
    row = _obj({
        "user_id": _STR, "risk": _NUM,
        "savable": {**_NUM, "description": "P(alive) x P(leaves | alive): the part of the risk a call can act on; the save list's order"},
        "health": _NUM, "temperature": _TEMP, "stage": {"enum": list(STAGES)},
        "segment": {"type": ["string", "null"]}, "action": {"enum": list(ACTIONS)}, "reason": _NSTR,
        "trend": {"type": "array", "items": {"$ref": "#/components/schemas/TrendPoint"}},
    })
    user = _obj({
        "user_id": _STR, "as_of": _STR, "risk": _NUM, "health": _NUM, "temperature": _TEMP, "stage": {"enum": list(STAGES)},
        "segment": {"type": ["string", "null"]}, "action": {"enum": list(ACTIONS)}, "reasons": {"type": "array", "items": _STR},
        "first_seen": _NSTR, "last_seen": _NSTR, "events": {"type": "integer"}, "active_days": {"type": "integer"},
        "purchases": {"type": "integer", "description": "distinct UTC days with a purchase"}, "revenue": _NUM, "at_risk_since": _NSTR,
        "activity_28d": _obj({"view": _NUM, "click": _NUM, "message": _NUM, "all": _NUM}),
        "history": {"type": "array", "items": {"$ref": "#/components/schemas/TrendPoint"}},
        "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/AlertEntry"}},
        "model": {"$ref": "#/components/schemas/Model"},
    })
    # present (true) only for a user whose subscription is a trial that never paid: a lead, not a customer (QA23a F2)
    never_paid = {"type": "boolean", "description": "true: the user's latest statement is a trial, or its cancellation "
                  "with no paying statement between, of a user who never paid a plan of their own (a lead, not "
                  "a customer; a former subscriber's trial is not one); absent otherwise"}
    row["properties"]["never_paid_trial"] = user["properties"]["never_paid_trial"] = never_paid
    # present only for a member of an account (its events name account_id): where a CRM routes the user
    user["properties"].update({
        "account_id": {**_STR, "description": "the account the user is a member of (its events' account_id)"},
        "account_name": {**_NSTR, "description": "the account's name in the accounts table; null when not listed"},
        "owner": {**_NSTR, "description": "the account's owner in the accounts table; null when not listed"},
    })
    model = _obj({
        "id": {**_STR, "description": "<version>@<digest> of the model the scores in this answer come from"},
        "in_use": {"type": "boolean", "description": "that model is the one Redis records in use, the workers' (true "
                   "before any is recorded); false: the recorded model's file cannot be loaded and the console scores "
                   "with its own, so the scores may differ from the alerts (note says so)"},
        "note": {**_NSTR, "description": "what the pages say about the model: the recorded model's file is missing, or "
                 "the console's CHURNWATCH_MODEL_PATH is not the model in use (it scores with the workers'); null: nothing"},
    })
    alert = _obj({"alert_id": _STR, "kind": _STR, "time": _STR, "event_time_ms": {"type": "integer"}, "stage": _NSTR,
                  "risk": _NUM, "reasons": {"type": "array", "items": _STR}})
    week = _obj({"week_end": {"type": "string", "format": "date"}, "churned": {"type": "integer"}, "won": {"type": "integer"},
                 "churn_rate": _NUM, "churned_revenue": _NUM})
    int_, money, pct = {"type": "integer"}, {"type": "string", "pattern": "^-?[0-9]+\\.[0-9]{2}$"}, _NSTR
    figures = _obj({
        "period_start": {"type": "string", "format": "date"}, "period_end": {"type": "string", "format": "date"},
        **{k: money for k in _MONEY}, **{f"{k}_cents": int_ for k in _MONEY},
        **{k: money for k in _CHURN_SPLIT}, **{f"{k}_cents": int_ for k in _CHURN_SPLIT},  # QA22a F5
        **{k: int_ for k in ("customers_start", "new_customers", "reactivated_customers", "churned_customers", "customers_end",
                             "won", "lost", "logo_churn", "lost_involuntary")},
        **{k: pct for k in ("logo_churn_pct", "gross_mrr_churn_pct", "net_mrr_churn_pct", "nrr_pct", "grr_pct", "quick_ratio")},
    })
    # only in a period that holds a pause or a resume (docs/REVENUE.md "Pauses"): not required
    figures["properties"].update({"paused": money, "resumed": money, "paused_cents": int_, "resumed_cents": int_,
                                  "paused_customers": int_, "resumed_customers": int_})
    # only in a period that holds an introductory price's end (docs/REVENUE.md, QA24a F2): not required
    figures["properties"].update({"expansion_intro": money, "expansion_intro_cents": int_, "intro_customers": int_,
                                  "nrr_full_price_pct": pct})
    cohort = _obj({"cohort": _STR, "customers": int_, "new_mrr": money, "months": {"type": "array", "items": _obj({
        "month": _STR, "customers": int_, "mrr": money, "customer_retention_pct": pct, "mrr_retention_pct": pct})}})
    revenue = _obj({"period": {"enum": ["day", "week", "month"]},
                    "currency": {**_NSTR, "description": "the ISO 4217 code every amount is in (CHURNWATCH_CURRENCY); "
                                 "null: one currency, unnamed"},
                    "periods": {"type": "array", "items": {"$ref": "#/components/schemas/PeriodFigures"}},
                    "cohorts": {"type": "array", "items": {"$ref": "#/components/schemas/Cohort"}},
                    "behind_note": {**_NSTR, "description": "churn-rate's note when the account side is catching up a "
                                    "backlog: the MRR figures count the statements up to its time only; null when current"}})
    churn = _obj({
        "as_of": _STR, "period_days": {"type": "integer", "description": "the window in days (churn-rate --json calls it days)"}, "users": {"type": "integer"},
        "at_risk": {"type": "integer", "description": "users with an open at-risk alert, lapsed ones included (an alert stays "
                    "open while its user lapses): at_risk_reachable + at_risk_lapsed"},
        "at_risk_reachable": {"type": "integer", "description": "of at_risk, those of a reachable stage (new, active, declining, "
                              "reactivated) at their last review: the save list's population"},
        "at_risk_lapsed": {"type": "integer", "description": "of at_risk, those dormant or churned at their last review: the "
                           "win-back list's population"},
        "by_stage": {"type": "object", "additionalProperties": {"type": "integer"}}, "churned": {"type": "integer"},
        "active_at_start": {"type": "integer"}, "churn_rate": _NUM,
        "reactivated": {"type": "integer", "description": "of churned, the users back (a return from churned) by the window's end"},
        "churned_trials": {"type": "integer", "description": "of churned, the users whose subscription is a trial that never "
                           "paid (leads lost, not customers)"},
        "churned_never_paid": {"type": "integer", "description": "of churned, not churned_trials, the users who never paid "
                               "at all: no purchase, no paying subscription of their own ever, no company account (a "
                               "free tier's users)"},
        "churn_rate_others": {**_NUM, "description": "churn_rate without churned_trials and churned_never_paid: (churned - "
                              "churned_trials - churned_never_paid) / active_at_start, the same users active at the start "
                              "(the paying customers' own churn over the customers at the start: revenue's logo churn)"},
        "churned_revenue": {**_NUM, "description": "the purchases (amounts of purchase events) of the users who churned in "
                            "the window, up to their churn; not subscription MRR (that is in revenue)"},
        "churned_revenue_counted": {"type": "boolean", "description": "whether a churned user's purchases were ever counted "
                                    "(any day the store holds); false for a product without purchase events, whose "
                                    "churned_revenue is 0 by construction (the Churn page leaves its card and chart out)"},
        "weekly": {"type": "array", "items": week}, "revenue": revenue,
    })
    account_row = _obj({
        "account_id": _STR, "name": _STR, "owner": _STR, "renewal_date": _STR,
        "renews_on": {**_NSTR, "description": "UTC date the earliest paid period of its subscriptions ends (their "
                      "period_end); null when none is stated"},
        "renews_in_days": {"type": ["integer", "null"], "description": "calendar days from the stream time to renews_on "
                           "(negative: due and no renewal stated since)"},
        "risk": _NUM, "health": {"type": "integer"},
        "temperature": {"type": "integer"}, "stage": _STR, "mrr": _NUM, "users": {"type": "integer"},
        "silent_users": {"type": "integer"}, "usage": _NUM, "action": _STR, "reasons": {"type": "array", "items": _STR},
        "lost_mrr": {**_NUM, "description": "churned: the MRR its cancellation took (the win-back list's first key); else 0"},
        "left_on": {**_NSTR, "description": "churned or trial_lost: UTC date the subscription went; lapsed: the day its last user was seen; else null"},
        "account_as_of": {**_STR, "description": "the time the account's figures are as of: the stream time, or the account's own "
                          "applied time while its account side is behind the stream (a replay catching up)"},
        "account_behind_days": {"type": "integer", "description": "whole days the account side is behind the stream time (0: current)"},
        "still_used": {**_STR, "description": "churned or trial_lost while users still use the product: \"8 of 9 users still "
                       "active: its subscriptions ended, not its use\" (absent otherwise)"},
        "usage_unknown": {"type": "boolean", "description": "true for a user's own account (no account_id on its events), "
                          "whose use the account does not see: health, usage and users are 0 and its risk, temperature and "
                          "action are its billing's alone; the user's own scores judge its use (absent otherwise)"},
    })
    account_row["required"].remove("still_used")
    account_row["required"].remove("usage_unknown")
    account = {**account_row, "properties": {
        **account_row["properties"], "as_of": _STR,
        "subscriptions": {"type": "array", "items": _obj({"plan": _STR, "status": _STR, "mrr": _NUM, "since": _STR,
                                                          "renews_on": _NSTR, "renews_in_days": {"type": ["integer", "null"]}})},
        "members": {"type": "array", "items": _obj({"user_id": _NSTR, "stage": {"enum": list(STAGES)}, "risk": _NUM,
                                                    "last_seen": _STR, "counted": {"type": "boolean"}})},
        "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/AlertEntry"}},
        "model": {"$ref": "#/components/schemas/Model"},
    }, "required": [*account_row["required"], "as_of", "subscriptions", "members", "alerts", "model"]}
    page = _obj({"as_of": _STR, "owner": _STR, "list": {"enum": list(LISTS)},
                 "items": {"type": "array", "items": {"anyOf": [{"$ref": "#/components/schemas/Row"},
                                                                {"$ref": "#/components/schemas/AccountRow"}]}},
                 "next_cursor": _NSTR, "model": {"$ref": "#/components/schemas/Model"}})
    err = _obj({"error": _obj({"status": {"type": "integer"}, "code": _STR, "message": _STR})})
    return {
        "openapi": "3.1.0",
        "info": {"title": "churnwatch console API", "version": API_VERSION,
                 "description": "Live churn scores from the churnwatch state in Redis, as of the stream time. Read-only."},
        "components": {
            "schemas": {"TrendPoint": point, "Row": row, "AtRiskPage": page, "User": user, "Churn": churn, "Error": err,
                        "PeriodFigures": figures, "Cohort": cohort, "AlertEntry": alert, "Model": model,
                        "AccountRow": account_row, "Account": account,
                        "Owners": _obj({"owners": {"type": "array", "items": _STR}})},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "required only when CHURNWATCH_CONSOLE_TOKEN is set"}},
        },
        "security": [{"bearer": []}, {}],
        "paths": {
            "/api/v1/at-risk": {"get": {
                "operationId": "listAtRisk",
                "summary": ("Users with an open at-risk alert to save (reachable, by the savable part of the risk) or to win back "
                            "(dormant or churned, warmest first, then by spend, active days and the latest leave, then user id), paged by cursor; with "
                            "an owner, that owner's accounts (AccountRow) ranked as `churnwatch top --owner`, paged and filtered alike"),
                "parameters": [
                    _q("owner", _STR, "account owner from the accounts table (/api/v1/owners); 'all' (the default): users, not accounts"),
                    _q("list", {"enum": list(LISTS), "default": "save"}, "save: at risk, still reachable; win_back: lapsed (dormant or churned)"),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "rows per page"),
                    _q("cursor", {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}, "next_cursor of the previous page (opaque; others are refused with 400)"),
                    _q("stage", {"enum": list(dict.fromkeys([*STAGES, *ACCOUNT_STAGES]))},
                       "only this stage: a user's lifecycle stage, or with an owner an account's stage (another value: 400)"),
                    _q("segment", {"type": "string", "minLength": 1, "maxLength": 100},
                       f"only this segment: a user's RFM segment ({', '.join(SEGMENTS)}; another value: 400), or with an "
                       "owner the account's segment in the accounts table"),
                    _q("action", {"enum": list(dict.fromkeys([*ACTIONS, *ACCOUNT_ACTIONS]))},
                       "only this recommended action: a user's, or with an owner an account's (another value: 400)"),
                ],
                "responses": {"200": _ok("AtRiskPage"), **_errors(400, 401, 404, 503)},
            }},
            "/api/v1/users/{user_id}": {"get": {
                "operationId": "getUser",
                "summary": "One user's live scores, reasons, activity, weekly history and last alerts worth a call (newest first)",
                "parameters": [{"name": "user_id", "in": "path", "required": True, "schema": _STR}],
                "responses": {"200": _ok("User"), **_errors(400, 401, 404, 409, 503),
                              "404": _error("no such user (code not_found: never seen, or expired after churn), or one "
                                            "whose events so far are billing statements alone (code no_activity: "
                                            "nothing to score until its first activity)")},
            }},
            "/api/v1/users": {"get": {
                "operationId": "getUserById",
                "summary": ("getUser with the id as a query parameter, for ids that clients remove from a path: `.`, `..` "
                            "(dot segments; browsers, curl and HTTP libraries normalise them away)"),
                "parameters": [{"name": "id", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1},
                                "description": "the user id"}],
                "responses": {"200": _ok("User"), **_errors(400, 401, 404, 409, 503)},
            }},
            "/api/v1/accounts": {"get": {
                "operationId": "getAccountById",
                "summary": "getAccount with the id as a query parameter, for ids that are dot segments (see getUserById)",
                "parameters": [{"name": "id", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1},
                                "description": "the account id"}],
                "responses": {"200": _ok("Account"), **_errors(400, 401, 404, 409, 503)},
            }},
            "/api/v1/accounts/{account_id}": {"get": {
                "operationId": "getAccount",
                "summary": ("One account's roll-up (as `churnwatch top --owner --json`), subscriptions, members (with their "
                            "user ids) and last alerts (newest first)"),
                "parameters": [{"name": "account_id", "in": "path", "required": True, "schema": _STR}],
                "responses": {"200": _ok("Account"), **_errors(400, 401, 404, 409, 503)},
            }},
            "/api/v1/churn": {"get": {
                "operationId": "getChurn",
                "summary": ("Users' churn by count, share and revenue over a period, weekly won and lost; accounts' churn in "
                            "money and count per period (MRR movements, NRR, GRR, won and lost) and retention by "
                            "signup-month cohort: the figures of `churnwatch churn-rate --json`"),
                "parameters": [_q("period", {"type": "string", "pattern": "^(36[0-5]|3[0-5][0-9]|[12][0-9]{2}|[1-9][0-9]?)d?$", "default": "30d"}, "days up to the stream time, 1-365"),
                               _q("revenue_period", {"enum": ["day", "week", "month"], "default": "month"},
                                  "revenue figures per day, ISO week or month: the last 12 up to the stream time")],
                "description": ("Any other query parameter is a 400 (owner among them: these figures are for all "
                                "accounts; per owner, `churnwatch report --accounts FILE --by-owner`)."),
                "responses": {"200": _ok("Churn"), **_errors(400, 401, 503)},
            }},
            "/api/v1/owners": {"get": {
                "operationId": "listOwners", "summary": "Account owners one can filter by",
                "responses": {"200": _ok("Owners"), **_errors(400, 401)},
            }},
        },
    }
