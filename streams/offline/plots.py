"""PNG charts of the backtest: ROC curve, lift chart and one user's scores over time.

matplotlib is an optional dependency (the ``plots`` extra) and slow to import, so it is imported
inside each function, and only its object-oriented API with the Agg canvas is used: no pyplot
global state, no display needed, safe in tests and on servers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from models.engine import Alert
    from streams.offline.replay import ScoreRow

__all__ = ["lift_chart", "roc_chart", "user_timeline"]

_STAGE_COLOURS: dict[str, str] = {
    "new": "#cfe8ff",
    "active": "#d9f2d0",
    "declining": "#ffe9b3",
    "dormant": "#ffd0a8",
    "churned": "#f4b6b6",
    "reactivated": "#d8ccf2",
}


def _figure(width: float, height: float, rows: int = 1, **kw: Any) -> tuple["Figure", Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the installation
        raise RuntimeError("charts need matplotlib: pip install 'churnwatch[plots]'") from None
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, **kw)
    return fig, axes


def _save(fig: "Figure", path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    return target


def roc_chart(fpr: Sequence[float], tpr: Sequence[float], auc: float, path: str | Path, subtitle: str = "") -> Path:
    """The ROC curve with its area, against the diagonal of a random ranking."""
    fig, ax = _figure(5.0, 5.0)
    ax.plot(fpr, tpr, color="#c0392b", lw=2, label=f"churn risk (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="random ranking (AUC 0.5)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (stayers flagged)")
    ax.set_ylabel("true positive rate (churners flagged)")
    ax.set_title("ROC curve" + (f": {subtitle}" if subtitle else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def lift_chart(rows: Sequence[Mapping[str, float]], path: str | Path) -> Path:
    """Lift per decile of risk (bars) and cumulative lift (line), from ``backtest.lift_table``."""
    fig, ax = _figure(7.0, 4.2)
    labels = [f"{100 * r['share']:.0f}%" for r in rows]
    xs = range(len(rows))
    ax.bar(xs, [r["lift"] for r in rows], color="#2e86c1", alpha=0.8, label="lift of this decile")
    ax.plot(xs, [r["cumulative_lift"] for r in rows], color="#c0392b", marker="o", label="cumulative lift")
    ax.axhline(1.0, color="grey", ls="--", lw=1, label="random (lift 1)")
    ax.set_xticks(list(xs), labels)
    ax.set_xlabel("users ranked by churn risk, highest first (cumulative share)")
    ax.set_ylabel("churn rate / overall churn rate")
    ax.set_title("Lift chart")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _legend_beside(ax: Any) -> None:
    """The legend right of the axes, outside them: inside, wherever it went, it could hide an
    alert's marker or a curve (QA: the risk panel's upper-left legend covered the first alert)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)


def user_timeline(
    rows: Sequence["ScoreRow"],
    alerts: Sequence["Alert"],
    event_ts_ms: Sequence[int],
    path: str | Path,
    title: str = "",
    churned_at_ms: int | None = None,
    risk_enter: float | None = None,
    risk_exit: float | None = None,
) -> Path:
    """Activity per day with the lifecycle stage behind it, health and temperature, and churn
    risk, with the engine's alerts marked where it raised them (from ``backtest.timeline``)."""
    return _save(_timeline_figure(rows, alerts, event_ts_ms, title, churned_at_ms, risk_enter, risk_exit), path)


def _timeline_figure(rows: Sequence["ScoreRow"], alerts: Sequence["Alert"], event_ts_ms: Sequence[int], title: str,
                     churned_at_ms: int | None, risk_enter: float | None, risk_exit: float | None) -> "Figure":
    """The figure :func:`user_timeline` saves."""
    if not rows:
        raise ValueError("no scores to draw: the user has no events before the last date")
    import matplotlib.dates as mdates

    fig, (ax_act, ax_score, ax_risk) = _figure(11.0, 7.0, rows=3, sharex=True, height_ratios=[1, 2, 2])
    times = [_dt(r.as_of_ms) for r in rows]

    # Activity: events per UTC day, with the stage as a coloured band behind.
    day_ms = 86_400_000
    per_day: dict[int, int] = {}
    for t in event_ts_ms:
        per_day[t // day_ms] = per_day.get(t // day_ms, 0) + 1
    ax_act.bar([_dt(d * day_ms) for d in sorted(per_day)], [per_day[d] for d in sorted(per_day)], width=0.8, color="#555555")
    ax_act.set_ylabel("events / day")
    start = 0
    shown: dict[str, Any] = {}
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i].stage != rows[start].stage:
            stage = rows[start].stage
            end_t = times[i] if i < len(rows) else times[-1]
            for ax in (ax_act, ax_score, ax_risk):
                band = ax.axvspan(times[start], end_t, color=_STAGE_COLOURS.get(stage, "#eeeeee"), alpha=0.6, lw=0)
            shown.setdefault(stage, band)
            start = i
    ordered = [s for s in _STAGE_COLOURS if s in shown]
    ax_act.legend([shown[s] for s in ordered], [f"stage: {s}" for s in ordered], loc="lower left", bbox_to_anchor=(0, 1.0),
                  ncol=len(ordered), fontsize=8, frameon=False, borderaxespad=0.2)

    ax_score.plot(times, [r.health for r in rows], color="#1e8449", lw=2, label="health (use of the product)")
    ax_score.plot(times, [r.temperature for r in rows], color="#d35400", lw=2, label="temperature (back within the horizon)")
    ax_score.set_ylim(0, 100)
    ax_score.set_ylabel("score 0-100")
    _legend_beside(ax_score)

    ax_risk.plot(times, [r.risk for r in rows], color="#c0392b", lw=2, label="churn risk")
    if risk_enter is not None:
        ax_risk.axhline(risk_enter, color="#c0392b", ls=":", lw=1, label=f"alert above {risk_enter:g}")
    if risk_exit is not None:
        ax_risk.axhline(risk_exit, color="#1e8449", ls=":", lw=1, label=f"recovered below {risk_exit:g}")
    ax_risk.set_ylim(0, 1)
    ax_risk.set_ylabel("risk 0-1")

    marked: set[str] = set()
    for alert in alerts:
        if alert.kind == "stage_changed":
            continue
        colour = "#c0392b" if alert.kind == "at_risk" else "#1e8449"
        label = "at-risk alert" if alert.kind == "at_risk" else "recovered alert"
        when = _dt(alert.event_time_ms)
        for ax in (ax_score, ax_risk):
            ax.axvline(when, color=colour, lw=1.5, ls="--")
        ax_risk.plot([when], [alert.scores.risk], marker="v" if alert.kind == "at_risk" else "^", color=colour, ms=10,
                     ls="none", label=None if label in marked else label, clip_on=False)  # whole on the first day too
        marked.add(label)
    if churned_at_ms is not None:
        for ax in (ax_act, ax_score, ax_risk):
            ax.axvline(_dt(churned_at_ms), color="black", lw=2)
        ax_risk.plot([], [], color="black", lw=2, label="gone: last activity (ground truth)")
    _legend_beside(ax_risk)
    ax_risk.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    ax_risk.set_xlim(times[0], times[-1])
    fig.suptitle(title or "one user over time")
    return fig
