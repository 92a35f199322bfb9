"""The console's server-rendered pages: My book, the quadrant, a customer, churn.

Each handler reads through ``streams.console.data`` (the same queries as the JSON API) and
renders a Jinja2 template shipped as package data; charts are SVG from ``streams.console.svg``.
No script runs in the browser: filters are a GET form, paging is a link with the cursor.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Sequence, get_args
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from models.account_health import ACCOUNT_ACTIONS, ACCOUNT_STAGES
from streams.views import BOOK_STAGES
from models.actions import Action
from models.model import ChurnModel
from models.reasons import _counted
from models.rfm import SEGMENTS
from models.signals import Signals
from models.state import STAGES
from streams.console import svg
from streams.console.data import (LISTS, BadRequest, Filters, NotFound, account_dict, account_view, at_risk_page, at_risk_split,
                                  churn_view, counters, ident_of, owner_book, owner_segments, revenue_view, trend_with_now, user_view)
from streams.console.deps import REDIS_DOWN, Deps, Unavailable
from streams.views import NoActivityYet, UnreadableAccount
from streams.worker.store import UnreadableState, churned_split_text
from streams.worker.history import HistoryPoint, week_start_s

__all__ = ["routes", "templates"]

ACTIONS = get_args(Action)
#: The quadrant draws the first this many users of the save list (My book's order: an at-risk alert open, still
#: reachable, by the savable part of the risk), the users an account manager calls, not the highest risks
#: (users almost surely gone already); the page and the README say so.
_QUADRANT_USERS = 300

templates = Environment(loader=PackageLoader("streams.console", "templates"), autoescape=select_autoescape(["html"]))


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _href(path: str, ident: str) -> str:
    """The link to the page of user or account ``ident`` under ``path`` (``/users``, ``/accounts``).

    ``/users/<id>`` (percent-encoded, ``/`` kept: the route takes the rest of the path), unless a
    ``/``-separated part of the id is ``.`` or ``..``: browsers remove such dot segments from every
    URL before asking (the WHATWG URL standard, ``%2E`` too), so ``/users/..`` opened My book (QA4 #8).
    Those ids go in the query string, where no segment is removed: ``/users?id=..``.

    >>> _href("/users", "a/b c"), _href("/users", ".."), _href("/users", "a/./b"), _href("/accounts", "..a")
    ('/users/a/b%20c', '/users?id=..', '/users?id=a%2F.%2Fb', '/accounts/..a')
    """
    if any(part in (".", "..") for part in ident.split("/")):
        return f"{path}?id={quote(ident, safe='')}"
    return f"{path}/{quote(ident, safe='/')}"


def _stamp(iso: str | None) -> str:
    """An API timestamp (ISO-8601 with milliseconds) as the pages print times: "2026-11-30 10:00 UTC"."""
    from streams.timefmt import parse_ts_ms

    return f"{_day(parse_ts_ms(iso))} UTC" if iso else "–"


templates.filters["when"] = _day
templates.filters["stamp"] = _stamp
templates.filters["user_href"] = lambda ident: _href("/users", ident)
templates.filters["account_href"] = lambda ident: _href("/accounts", ident)
templates.filters["label"] = lambda s: (s or "").replace("_", " ")
templates.filters["counted"] = lambda n, name: _counted(name, int(n))  # "1 user", "3 users": the reasons' rule
templates.filters["churned_split"] = churned_split_text  # "49 of them never paid; the other 49 = 1.9%": churn-rate's words


#: The request's ``Deps``, so every page shows its ``model_note`` (base.html) without each handler passing it.
_DEPS: ContextVar[Deps | None] = ContextVar("console_deps", default=None)


def _render(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    deps = _DEPS.get()
    ctx.setdefault("model_note", deps.model_note if deps is not None else "")
    return HTMLResponse(templates.get_template(name).render(**ctx), status_code=status)


def _page(handler):  # type: ignore[no-untyped-def]
    """The handler, with the console's errors as a readable page (same status codes as the API)."""

    async def endpoint(request: Request) -> Response:
        deps: Deps = request.app.state.deps
        _DEPS.set(deps)  # this request's context only (each request runs in a task of its own)
        try:
            return await handler(request, deps)
        except BadRequest as exc:
            return _render("message.html", 400, title="Cannot show that", message=str(exc), nav=None)
        except NotFound as exc:
            return _render("message.html", 404, title="Not found", message=str(exc), nav=None)
        except NoActivityYet as exc:
            return _render("message.html", 404, title="No activity yet", message=str(exc), nav=None)
        except UnreadableState as exc:  # the user page; 409 as the API (api._errors says why)
            title = "Cannot read this account" if isinstance(exc, UnreadableAccount) else "Cannot read this user"
            return _render("message.html", 409, title=title, message=str(exc), nav=None)
        # 503: every page of the console answers the same, so no "Back to My book" (it led to this
        # page again, QA6 L5): what to do, and a link to try this page again
        except Unavailable as exc:
            return _render("message.html", 503, title="No data yet", message=str(exc), nav=None,
                           retry="The pages fill once a worker (churnwatch worker) has applied events to this Redis.")
        except REDIS_DOWN as exc:
            return _render("message.html", 503, title="Redis does not answer", nav=None,
                           message=f"cannot read the state in Redis ({type(exc).__name__}); the page works again once it answers",
                           retry="Check that Redis is up (REDIS_URL).")

    return endpoint


def _pick(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}, got {value[:40]!r}")
    return value


def _sparks(points: list[HistoryPoint]) -> dict[str, Markup]:
    return {
        "health": Markup(svg.sparkline([p.health for p in points], lo=0, hi=100, color=svg.COLORS["health"], label="health trend")),
        "temperature": Markup(svg.sparkline([p.temperature for p in points], lo=0, hi=100, color=svg.COLORS["temperature"],
                                            label="temperature trend")),
    }


async def home(request: Request) -> Response:
    return RedirectResponse("/book", status_code=302)


async def book(request: Request, deps: Deps) -> Response:
    owner = await deps.owners.check(request.query_params.get("owner"))
    list_name = _pick(request, "list", LISTS) or "save"
    try:
        limit = int(request.query_params.get("limit") or 50)
    except ValueError:
        raise BadRequest("limit must be a whole number of rows") from None
    now_ms = await deps.now_ms()
    cursor = request.query_params.get("cursor") or None
    page, rows, accounts, next_cursor, book_page = None, [], None, None, None
    choices = {"stages": STAGES, "segments": SEGMENTS, "actions": ACTIONS}
    if owner != deps.owners.ALL:  # the owner's accounts, ranked as `churnwatch top --owner`
        # the Stage filter offers the stages this list can hold; none on the save list (all at risk)
        stages = BOOK_STAGES[list_name] if len(BOOK_STAGES[list_name]) > 1 else ()
        choices = {"stages": stages, "segments": tuple(await owner_segments(deps.owners, owner)), "actions": ACCOUNT_ACTIONS}
        filters = Filters(_pick(request, "stage", ACCOUNT_STAGES), _pick(request, "segment", choices["segments"]),
                          _pick(request, "action", ACCOUNT_ACTIONS))
        book_page = await owner_book(deps.settings, deps.owners, owner, list_name, limit, now_ms, cursor, filters)  # type: ignore[arg-type]
        accounts, next_cursor = book_page.accounts, book_page.next_cursor
    else:
        filters = Filters(_pick(request, "stage", STAGES), _pick(request, "segment", SEGMENTS), _pick(request, "action", ACTIONS))
        page = await at_risk_page(deps.store, deps.model, now_ms, list_name, limit,  # type: ignore[arg-type]
                                  cursor, filters, owner)
        next_cursor = page.next_cursor
        now_s = now_ms // 1000
        rows = [(r, _sparks(trend_with_now(r.history, max(now_s, r.state.last_seen_s), r.scores))) for r in page.rows]
    query = {k: v for k, v in {"owner": owner, "list": list_name, "stage": filters.stage, "segment": filters.segment,
                               "action": filters.action, "limit": str(limit)}.items() if v}
    stats = await counters(deps.store, ("users", "stage:churned"))
    split = await at_risk_split(deps.store)  # the open alerts, reachable and lapsed (QA14 F8: "698" read as half the base)
    return _render("book.html", nav="book", page=page, rows=rows, accounts=accounts, book=book_page, next_cursor=next_cursor, as_of_ms=now_ms,
                   owners=await deps.owners.names(), owner=owner, list_name=list_name, filters=filters, **choices, query=query,
                   first=not request.query_params.get("cursor"), split=split,
                   churned=stats["stage:churned"], users=stats["users"])


async def quadrant(request: Request, deps: Deps) -> Response:
    now_ms = await deps.now_ms()
    page = await at_risk_page(deps.store, deps.model, now_ms, "save", _QUADRANT_USERS)
    points = [(r.scores.health, r.scores.temperature, r.scores.action,
               f"{r.user_id}: health {r.scores.health:.0f}, temperature {r.scores.temperature:.0f}, risk {r.scores.risk:.2f}, "
               f"{r.scores.action.replace('_', ' ')}",
               _href("/users", r.user_id)) for r in page.rows]
    zones: dict[str, int] = {}
    for r in page.rows:
        zones[r.scores.action] = zones.get(r.scores.action, 0) + 1
    chart = svg.quadrant(points, cut_health=deps.model.action_health, cut_temperature=deps.model.action_temperature)
    return _render("quadrant.html", nav="quadrant", chart=Markup(chart), n=len(points), zones=zones, as_of_ms=now_ms,
                   cut_h=deps.model.action_health)


async def customer(request: Request, deps: Deps) -> Response:
    now_ms = await deps.now_ms()  # first: it also refreshes deps.model (a successor adopted since)
    view = await user_view(deps.store, deps.model, now_ms, ident_of(request, "user_id"))
    s, st = view.scores, view.state
    points = trend_with_now(view.history, view.as_of_ms // 1000, s)
    by_week = {p.week: p for p in points}
    weeks = list(range(points[0].week, points[-1].week + 1))  # weeks without a point stay gaps
    labels = week_labels(weeks)

    def values(attr: str) -> list[float | None]:
        return [getattr(by_week[w], attr) if w in by_week else None for w in weeks]

    scores_chart = svg.line_chart(labels, [("health", svg.COLORS["health"], values("health")),
                                           ("temperature", svg.COLORS["temperature"], values("temperature"))],
                                  lo=0, hi=100, y_ticks=(0, 50, 100))
    risk_chart = svg.line_chart(labels, [("churn risk", svg.COLORS["risk"], values("risk"))], lo=0, hi=1,
                                y_ticks=(0, deps.model.risk_enter, 1), y_format="{:.2f}")
    activity, kinds = _activity(s.signals, deps.model)
    d = view.report(await deps.owners.table() if view.account_id else {}).to_dict()  # the numbers of `churnwatch score --json`
    from streams.worker.alert_log import ALERT_LOG_CAP

    return _render("user.html", nav=None, v=view, d=d, s=s, st=st, cap=ALERT_LOG_CAP, scores_chart=Markup(scores_chart), risk_chart=Markup(risk_chart),
                   activity=activity, activity_max=max([a for _, a in activity] + [1.0]), kinds=kinds, weeks=len(weeks) - 1)


def week_labels(weeks: Sequence[int]) -> list[str]:
    """The x labels of the user's weekly charts: each completed week's point by the week's end
    (the Monday 00:00 UTC its scores are taken at, ``streams.worker.history``), the last point,
    the live scores of the current week (``trend_with_now``), as "now". Labelled by the week's
    start before, the chart put the state at Nov 30 under "Nov 23".

    >>> week_labels([2916, 2917, 2918])  # weeks starting 2025-11-24, 12-01, 12-08
    ['Dec 01', 'Dec 08', 'now']
    """
    ends = [datetime.fromtimestamp(week_start_s(w + 1), tz=timezone.utc).strftime("%b %d") for w in weeks[:-1]]
    return [*ends, "now"] if weeks else []


def _activity(sig: Signals | None, model: ChurnModel) -> tuple[list[tuple[str, float]], str]:
    """The user's 4-week counts (decayed to the stream time) per event type in the product's
    words (models.ranking), and "" (the names say it all). A model that tracks no names hashes
    the types into kinds nobody can name ("kind3" means nothing to an account manager): then the
    total alone, and how many kinds of activity the user used, as the reasons count them."""
    from models.ranking import activity_by_kind
    from models.reasons import _kinds_used

    if sig is None:
        return [], ""
    counts = activity_by_kind(sig, model)
    if model.compiled.vocabulary.tracked:
        return [(k, n) for k, n in counts if k != "all"], ""
    used = _kinds_used(sig, model)
    return [("all event types", counts[-1][1])], used[:1].upper() + used[1:]


async def account(request: Request, deps: Deps) -> Response:
    now_ms = await deps.now_ms()
    report, state, members, alerts, counted = await account_view(deps.settings, deps.owners, ident_of(request, "account_id"), now_ms, deps.model)
    now_ms = report.as_of_ms  # the account side's own time when it is behind the stream (QA18 F5)
    d = account_dict(report, state, members, now_ms, alerts, counted)  # the numbers of the API and `churnwatch top --owner --json`
    return _render("account.html", nav=None, r=report, a=report.rollup, d=d, as_of_ms=now_ms)


async def churn(request: Request, deps: Deps) -> Response:
    try:
        days = int(request.query_params.get("days") or 30)
    except ValueError:
        raise BadRequest("days must be a whole number") from None
    from models.revenue_ledger import PERIODS

    now_ms = await deps.now_ms()
    view = await churn_view(deps.store, now_ms, days)
    rev = await revenue_view(deps.store, deps.settings, now_ms, _pick(request, "revenue_period", PERIODS) or "month")
    weekly = view["weekly"]
    labels = [w["week_end"][5:] for w in weekly]
    won_lost = svg.bars(labels, [("won (new)", svg.COLORS["won"], [w["won"] for w in weekly]),
                                 ("lost (churned)", svg.COLORS["lost"], [w["churned"] for w in weekly])])
    top = max([w["churn_rate"] for w in weekly] + [0.01])
    rate = svg.line_chart(labels, [("weekly churn rate", svg.COLORS["risk"], [w["churn_rate"] for w in weekly])], lo=0, hi=top,
                          y_ticks=(0, top / 2, top), y_format="{:.1%}")
    revenue = (svg.bars(labels, [("purchases of churned users", svg.COLORS["lost"], [w["churned_revenue"] for w in weekly])])
               if view["churned_revenue_counted"] else "")  # no purchase ever counted: no card, no empty chart (data.purchases_counted)
    return _render("churn.html", nav="churn", c=view, as_of_ms=now_ms, won_lost=Markup(won_lost), rate=Markup(rate), revenue=Markup(revenue),
                   rev=rev, **_revenue_charts(rev))


def _revenue_charts(rev: dict[str, Any]) -> dict[str, Markup]:
    """MRR over time (start MRR and the five movements) and accounts won against lost, per period."""
    periods = rev["periods"]
    labels = [p["period_start"][5:] if rev["period"] != "month" else p["period_start"][:7] for p in periods]
    mrr = svg.mrr_chart(labels, [p["start_mrr_cents"] / 100 for p in periods],
                        [{k: p[f"{k}_cents"] / 100 for k in svg.MOVEMENT_COLORS} for p in periods])
    accounts = svg.bars(labels, [("won", svg.COLORS["won"], [p["won"] for p in periods]),
                                 ("lost (churned)", svg.COLORS["lost"], [p["lost"] for p in periods])])
    return {"mrr_chart": Markup(mrr), "accounts_chart": Markup(accounts)}


routes = [
    Route("/", home),
    Route("/book", _page(book)),
    Route("/quadrant", _page(quadrant)),
    Route("/users", _page(customer)),  # ?id=: the ids a browser would cut out of a path (_href)
    Route("/users/{user_id:path}", _page(customer)),
    Route("/accounts", _page(account)),
    Route("/accounts/{account_id:path}", _page(account)),
    Route("/churn", _page(churn)),
]
