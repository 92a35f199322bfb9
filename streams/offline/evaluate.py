"""Measure scores against ground truth the way a CRM would judge them.

With labels (``user_id,churned_at[,persona]``, churn = the last activity): how well risk ranks
the users who are gone by the end of the horizon (ROC AUC, top-decile lift; :class:`_Panels` says
which rows are judged), how often an at-risk alert is right (precision), how many churners were
flagged (recall) and how early (lead time). The definitions are spelled out in docs/SCORES.md and
next to each function.
"""

from __future__ import annotations

import bisect
import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from models.state import DAY_S
from streams.offline.history import read_labels_csv
from streams.offline.replay import Replay, ScoreRow, open_text
from streams.timefmt import format_day_or_time

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: An at-risk alert less than this many days after a "recovered" of the same user is a flap.
FLAP_QUIET_DAYS = 14

__all__ = [
    "AlertEpisode",
    "Labels",
    "alert_episodes",
    "alert_outcomes",
    "auc_spread",
    "auc_verdict",
    "covers",
    "evaluate",
    "flaps",
    "lead_time_ms",
    "lift_table",
    "median",
    "read_labels",
    "roc_auc",
    "roc_curve",
    "top_fraction_lift",
    "within_noise",
]


@dataclass(frozen=True, slots=True)
class Labels:
    """Ground truth: when each churner churned (users not listed never did), and optional personas."""

    churned_at_ms: Mapping[str, int]
    persona: Mapping[str, str] = field(default_factory=dict)


def read_labels(path: str | Path) -> Labels:
    """``user_id,churned_at[,persona]`` (CSV, optionally gzipped) read by ``streams.offline.history``;
    the persona column, when present, splits recall and lead time by kind of user."""
    churned = read_labels_csv(path)
    persona: dict[str, str] = {}
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        if "persona" in (reader.fieldnames or ()):
            persona = {row["user_id"].strip(): row["persona"].strip() for row in reader if row.get("persona")}
    return Labels(churned, persona)


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve via the rank statistic (Mann-Whitney U / (n_pos * n_neg)).

    It is the probability that a random positive scores above a random negative, ties counting
    half. None when one class is empty (the area is undefined).

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    """
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    import numpy as np

    auc = _auc_ranks(np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool))
    return None if math.isnan(auc) else auc


def _auc_ranks(scores: "np.ndarray", y: "np.ndarray") -> float:
    """:func:`roc_auc` of numpy arrays, its one implementation: the rank-sum formula, ties at their
    average rank (so counting half), nan for one class."""
    import numpy as np
    from scipy.stats import rankdata

    pos = y.astype(bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((rankdata(scores)[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


#: A difference of AUCs within this many of its bootstrap standard errors is reported as noise.
NOISE_SES = 2.0


def within_noise(difference: float, se: float | None) -> bool:
    """Is an AUC difference within ``NOISE_SES`` standard errors of 0 (``auc_spread``)? An unknown
    error counts as noise.

    >>> within_noise(0.01, 0.006), within_noise(0.02, 0.006), within_noise(0.05, None)
    (True, False, True)
    """
    return se is None or abs(difference) < NOISE_SES * se


def auc_verdict(new: float | None, old: float | None, se: float | None) -> str | None:
    """One verdict on a new scorer against an old one from their held-out ROC AUCs and the
    bootstrap standard error of the difference: ``"better"`` (higher beyond noise), ``"worse"``
    (lower beyond noise), ``"no better"`` (within noise, or equal); None when an AUC is unknown
    (one class held out). Why one function: ``train`` prints it and ``learn``'s guard
    (``streams.offline.learn.beats``) adopts only a "better" successor, so the two commands never
    disagree in words on the same comparison (QA6 L1: train said "beats ... within noise" of a
    +0.001 +- 0.049 gain that learn kept out).

    >>> auc_verdict(0.80, 0.70, 0.02), auc_verdict(0.6932, 0.6919, 0.049), auc_verdict(0.60, 0.70, 0.02)
    ('better', 'no better', 'worse')
    >>> auc_verdict(0.7, 0.7, 0.0), auc_verdict(0.8, None, 0.01), auc_verdict(0.8, 0.7, None)
    ('no better', None, 'no better')
    """
    if new is None or old is None:
        return None
    difference = float(new) - float(old)
    if difference == 0 or within_noise(difference, se):
        return "no better"
    return "better" if difference > 0 else "worse"


def auc_spread(ranked: Mapping[str, "np.ndarray"], y: "np.ndarray", users: Sequence[str], pairs: Sequence[tuple[str, str]],
               reps: int = 200, seed: int = 0) -> dict[str, float]:
    """Standard errors, by a bootstrap over users, of each scorer's AUC and of the AUC differences
    ``pairs`` (a minus b): the rows of one user are resampled together, because weekly rows of
    one user are not independent. Why: AUCs 0.02 apart on 40-60 churning users (the quality
    table's fightchurn populations, train's held-out users of a small product) may be noise, and
    a reader must see whether a gap is more than that.

    >>> import numpy as np
    >>> y = np.array([0, 1, 0, 1]); r = {"a": np.array([0.1, 0.9, 0.2, 0.8]), "b": np.array([0.9, 0.1, 0.8, 0.2])}
    >>> sorted(auc_spread(r, y, ["u", "u", "v", "v"], [("a", "b")], reps=20))
    ['a', 'a-b', 'b']
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    ids: dict[str, list[int]] = {}
    for i, u in enumerate(users):
        ids.setdefault(u, []).append(i)
    groups = [np.array(v) for v in ids.values()]
    draws: dict[str, list[float]] = {k: [] for k in [*ranked, *(f"{a}-{b}" for a, b in pairs)]}
    for _ in range(reps):
        rows = np.concatenate([groups[j] for j in rng.integers(0, len(groups), len(groups))])
        aucs = {k: _auc_ranks(v[rows], y[rows]) for k, v in ranked.items()}
        for k, v in aucs.items():
            draws[k].append(v)
        for a, b in pairs:
            draws[f"{a}-{b}"].append(aucs[a] - aucs[b])
    return {k: round(float(np.nanstd(v, ddof=1)), 4) for k, v in draws.items()}


def roc_curve(scores: Sequence[float], labels: Sequence[bool]) -> tuple[list[float], list[float]]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1).

    >>> roc_curve([0.9, 0.5, 0.5, 0.1], [True, True, False, False])
    ([0.0, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0])
    """
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    pairs = sorted(zip(scores, labels), key=lambda p: -p[0])
    fpr, tpr = [0.0], [0.0]
    tp = fp = 0
    for i, (s, y) in enumerate(pairs):
        if y:
            tp += 1
        else:
            fp += 1
        if i + 1 == len(pairs) or pairs[i + 1][0] != s:
            fpr.append(fp / n_neg if n_neg else 0.0)
            tpr.append(tp / n_pos if n_pos else 0.0)
    return fpr, tpr


class _Ranking:
    """Scores ranked highest first with running positive counts, so the positives among the top
    ``k`` cost two bisections whatever ``k`` (lift tables ask for ten cuts of the same ranking)."""

    def __init__(self, scores: Sequence[float], labels: Sequence[bool]) -> None:
        pairs = sorted(zip(scores, labels), key=lambda p: -p[0])
        self.neg_scores = [-s for s, _ in pairs]  # ascending, for bisect
        self.cum = [0]
        for _, y in pairs:
            self.cum.append(self.cum[-1] + (1 if y else 0))

    def positives_in_top(self, k: int) -> float:
        """Positives among the ``k`` highest scores, ties at the cut split pro rata (the expectation
        over random tie-breaks), so a constant score gets lift 1 and not an accident of order."""
        k = min(k, len(self.neg_scores))
        if k <= 0:
            return 0.0
        cut = self.neg_scores[k - 1]
        lo, hi = bisect.bisect_left(self.neg_scores, cut), bisect.bisect_right(self.neg_scores, cut)
        return self.cum[lo] + (k - lo) * (self.cum[hi] - self.cum[lo]) / (hi - lo)


def top_fraction_lift(scores: Sequence[float], labels: Sequence[bool], fraction: float = 0.1) -> float | None:
    """Positive rate among the top ``fraction`` by score over the overall positive rate.

    >>> top_fraction_lift([0.9, 0.8, 0.3, 0.2, 0.1], [True, False, True, False, False], 0.2)
    2.5
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    n = len(scores)
    positives = sum(1 for y in labels if y)
    if n == 0 or positives == 0:
        return None
    k = max(1, math.ceil(n * fraction - 1e-9))
    return (_Ranking(scores, labels).positives_in_top(k) / k) / (positives / n)


def lift_table(scores: Sequence[float], labels: Sequence[bool], bins: int = 10) -> list[dict[str, float]]:
    """Per decile (by default) of score, highest first: share of population, lift of that bin and
    cumulative lift down to it, and cumulative share of positives captured (the gains curve)."""
    n = len(scores)
    positives = sum(1 for y in labels if y)
    if n == 0 or positives == 0:
        return []
    base = positives / n
    ranking = _Ranking(scores, labels)
    out = []
    prev_k, prev_pos = 0, 0.0
    for i in range(1, bins + 1):
        k = max(1, math.ceil(n * i / bins - 1e-9))
        cum_pos = ranking.positives_in_top(k)
        size = k - prev_k
        out.append({
            "share": k / n,
            "lift": ((cum_pos - prev_pos) / size) / base if size else 0.0,
            "cumulative_lift": (cum_pos / k) / base,
            "captured": cum_pos / positives,
        })
        prev_k, prev_pos = k, cum_pos
    return out


def median(values: Sequence[float]) -> float | None:
    """The middle value (mean of the two middle ones for an even count); None when empty.

    >>> median([3, 1, 2]), median([1, 2, 3, 4]), median([])
    (2, 2.5, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True, slots=True)
class AlertEpisode:
    """From an at-risk alert to the recovered alert that closed it (``None``: still open)."""

    opened_ms: int
    closed_ms: int | None


def alert_episodes(alerts: Iterable[tuple[str, int]]) -> list[AlertEpisode]:
    """At-risk episodes from a user's ``(kind, event_time_ms)`` alerts in time order.

    >>> alert_episodes([("at_risk", 10), ("recovered", 20), ("at_risk", 30)])
    [AlertEpisode(opened_ms=10, closed_ms=20), AlertEpisode(opened_ms=30, closed_ms=None)]
    """
    episodes: list[AlertEpisode] = []
    opened: int | None = None
    for kind, t in alerts:
        if kind == "at_risk" and opened is None:
            opened = t
        elif kind == "recovered" and opened is not None:
            episodes.append(AlertEpisode(opened, t))
            opened = None
    if opened is not None:
        episodes.append(AlertEpisode(opened, None))
    return episodes


def covers(episode: AlertEpisode, churned_at_ms: int, horizon_ms: int) -> bool:
    """Whether the user stood flagged at some moment of the horizon before churning: the alert
    was raised before the churn and not recovered until the last ``horizon_ms`` before it.

    Why "some moment" and not "at the churn": ground truth puts churn at the user's *last*
    event, and a last visit may well look like a recovery; the alert still came in time.

    >>> covers(AlertEpisode(10, 80), 100, 30), covers(AlertEpisode(10, 60), 100, 30), covers(AlertEpisode(10, None), 100, 30)
    (True, False, True)
    """
    if episode.opened_ms >= churned_at_ms:
        return False
    return episode.closed_ms is None or episode.closed_ms > churned_at_ms - horizon_ms


def lead_time_ms(episodes: Sequence[AlertEpisode], churned_at_ms: int, horizon_ms: int) -> int | None:
    """From the first at-risk alert of the run-up to the churn: the earliest opening among the
    episodes that ``covers`` the churn. None: the user was not flagged in time.

    >>> lead_time_ms([AlertEpisode(10, 20), AlertEpisode(50, 80), AlertEpisode(90, None)], 100, 30)
    50
    >>> lead_time_ms([AlertEpisode(10, 20)], 100, 30) is None
    True
    """
    leads = [churned_at_ms - ep.opened_ms for ep in episodes if covers(ep, churned_at_ms, horizon_ms)]
    return max(leads) if leads else None


def flaps(alerts: Iterable[tuple[str, int]], first_ms: int, last_ms: int, quiet_ms: int) -> tuple[int, int]:
    """(at-risk alerts raised in [first_ms, last_ms], those of them raised less than ``quiet_ms``
    after a "recovered" of the same user) from one user's ``(kind, event_time_ms)`` alerts in
    time order: the second over the first is the flap rate, alerts a CRM gets about a user it
    was just told had recovered.

    >>> flaps([("at_risk", 0), ("recovered", 10), ("at_risk", 15), ("recovered", 20), ("at_risk", 90)], 0, 100, 14)
    (3, 1)
    """
    raised = flapped = 0
    recovered: int | None = None
    for kind, t in alerts:
        if kind == "recovered":
            recovered = t
        elif kind == "at_risk" and first_ms <= t <= last_ms:
            raised += 1
            flapped += recovered is not None and t - recovered < quiet_ms
    return raised, flapped


def alert_outcomes(episodes: Sequence[AlertEpisode], churned_at_ms: int | None, horizon_ms: int, known_until_ms: int) -> tuple[int, int, int]:
    """(right, wrong, unknown) counts of a user's alert episodes raised before the churn (if any).

    Right: it ``covers`` the churn. Wrong: it does not, and that is settled: the user churned
    (later than it covers), or the horizon after the recovery (or, while still open, after the
    alert) passed inside the observed data. Unknown: not settled by ``known_until_ms``.

    >>> alert_outcomes([AlertEpisode(0, 5), AlertEpisode(50, None)], 60, 30, 100)
    (1, 1, 0)
    >>> alert_outcomes([AlertEpisode(0, 5), AlertEpisode(50, 60), AlertEpisode(90, None)], None, 30, 100)
    (0, 2, 1)
    """
    right = wrong = unknown = 0
    for ep in episodes:
        if churned_at_ms is not None and ep.opened_ms >= churned_at_ms:
            continue  # raised after the user had already gone: not a prediction
        if churned_at_ms is not None and covers(ep, churned_at_ms, horizon_ms):
            right += 1
        elif churned_at_ms is not None or (ep.closed_ms if ep.closed_ms is not None else ep.opened_ms) + horizon_ms <= known_until_ms:
            wrong += 1
        else:
            unknown += 1
    return right, wrong, unknown


@dataclass(slots=True)
class _Panel:
    """(user, as-of) rows that can be judged: the risk shown and whether churn followed."""

    risk: list[float] = field(default_factory=list)
    churns: list[bool] = field(default_factory=list)
    as_of: list[int] = field(default_factory=list)
    excluded_churned: int = 0
    excluded_unobserved: int = 0
    already_gone: int = 0  # (open view) positives whose last activity was already behind them

    def add(self, risk: float, churns: bool, as_of_ms: int) -> None:
        self.risk.append(risk)
        self.churns.append(churns)
        self.as_of.append(as_of_ms)

    def summary(self) -> dict[str, Any]:
        n, pos = len(self.churns), sum(self.churns)
        return {
            "rows_judged": n,
            "rows_churn_within_horizon": pos,
            "base_rate": _rounded(pos / n) if n else None,
            "roc_auc": _rounded(roc_auc(self.risk, self.churns)),
            "top_decile_lift": _rounded(top_fraction_lift(self.risk, self.churns, 0.1), 3),
        }


@dataclass(slots=True)
class _Panels:
    """Two ways to pick the rows that can be judged (docs/SCORES.md, "How good is it").

    Both leave out users the engine has reported churned at the as-of date (their risk is 1 by
    definition) and dates whose horizon reaches past the data. Churn is the time of the last
    activity (the labels' ``churned_at``).

    ``open`` (the headline, and what ``churnwatch train`` judges its held-out users on): every
    user not reported churned, which is all a CRM can know at the as-of date; positive when the
    user is gone by the end of the horizon, whether the last activity is still ahead or already
    behind (left, but not silent long enough to be called churned).
    ``ahead``: only users whose last activity is still ahead; positive when it falls in the
    horizon. Picking these rows uses the future (only later silence shows that a last visit was
    the last): it drops the silent-and-gone and keeps the silent-and-returning, so it measures
    how well the *last visit* is foreseen, which abrupt quitters make close to a coin toss.
    """

    open: _Panel = field(default_factory=_Panel)
    ahead: _Panel = field(default_factory=_Panel)


def _panel_collector(labels: Labels, horizon_ms: int, known_until_ms: int) -> tuple[_Panels, Callable[[ScoreRow], None]]:
    panels = _Panels()
    ahead, open_ = panels.ahead, panels.open

    def collect(row: ScoreRow) -> None:
        if row.as_of_ms + horizon_ms > known_until_ms:
            ahead.excluded_unobserved += 1
            open_.excluded_unobserved += 1
            return
        if row.stage == "churned":  # reported: its risk is 1 by definition, not a forecast
            ahead.excluded_churned += 1
            open_.excluded_churned += 1
            return
        churned = labels.churned_at_ms.get(row.user_id)
        gone = churned is not None and churned <= row.as_of_ms + horizon_ms
        behind = churned is not None and churned <= row.as_of_ms
        open_.add(row.risk, gone, row.as_of_ms)
        open_.already_gone += behind
        if behind:
            ahead.excluded_churned += 1
        else:
            ahead.add(row.risk, gone, row.as_of_ms)

    return panels, collect


def _rounded(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def evaluate(panels: _Panels, result: Replay, labels: Labels, as_of_ms: Sequence[int], horizon_ms: int) -> dict[str, Any]:
    """Every detection figure of a replay against labels, as a JSON-ready dict.

    The window is [first as-of, last as-of]: alert episodes opened in it are judged for precision
    (``alert_outcomes``), and users who churned inside it, having been seen before, are the
    churners of recall and lead time. Churn after the last event of the input is unobservable.
    Churners not flagged before they left get the delay from their churn to the first at-risk
    alert after it, if any: how long the CRM waits to hear about a user who left abruptly.

    Alert volume: at-risk alerts raised in the window per user-month (each user counted from
    the window's start, or first sight, to its end, in 30-day months) and the share of them raised
    within ``FLAP_QUIET_DAYS`` after a recovered alert of the same user (:func:`flaps`).
    """
    first, last = min(as_of_ms), max(as_of_ms)
    day_ms = DAY_S * 1000
    known_until = result.data_end_ms
    panel = panels.open
    by_date: dict[int, tuple[list[float], list[bool]]] = {}
    for r, y, d in zip(panel.risk, panel.churns, panel.as_of):
        rs, ys = by_date.setdefault(d, ([], []))
        rs.append(r)
        ys.append(y)
    right = wrong = unknown = after_churn = raised = flapped = 0
    spans: list[float] = []  # user-months, summed exactly: the same figure whatever order the users come in
    churners: dict[str, int] = {}
    leads: dict[str, list[float]] = {}
    delays: dict[str, list[float]] = {}
    for user, first_seen in result.first_seen_ms.items():
        churned = labels.churned_at_ms.get(user)
        episodes = alert_episodes(result.alerts.get(user, ()))
        in_window = [ep for ep in episodes if first <= ep.opened_ms <= last]
        r, w, u = alert_outcomes(in_window, churned, horizon_ms, known_until)
        right, wrong, unknown = right + r, wrong + w, unknown + u
        after_churn += sum(1 for ep in in_window if churned is not None and ep.opened_ms >= churned)
        n_raised, n_flapped = flaps(result.alerts.get(user, ()), first, last, FLAP_QUIET_DAYS * day_ms)
        raised, flapped = raised + n_raised, flapped + n_flapped
        if first_seen < last:
            spans.append((last - max(first, first_seen)) / (30 * day_ms))
        if churned is None or not first < churned <= last or first_seen >= churned:
            continue
        persona = labels.persona.get(user, "")
        churners[persona] = churners.get(persona, 0) + 1
        lead = lead_time_ms(episodes, churned, horizon_ms)
        if lead is not None:
            leads.setdefault(persona, []).append(lead / day_ms)
            continue
        late = [ep.opened_ms - churned for ep in episodes if ep.opened_ms >= churned]
        if late:
            delays.setdefault(persona, []).append(min(late) / day_ms)
    user_months = math.fsum(spans)
    judged = right + wrong
    n_churners = sum(churners.values())
    all_leads = [d for v in leads.values() for d in v]
    all_delays = [d for v in delays.values() for d in v]
    return {
        "horizon_days": horizon_ms / day_ms,
        "window": [format_day_or_time(first), format_day_or_time(last)],
        "data_end": format_day_or_time(known_until),
        **panel.summary(),
        "rows_already_gone": panel.already_gone,
        "rows_excluded_reported_churned": panel.excluded_churned,
        "rows_excluded_horizon_past_data_end": panel.excluded_unobserved,
        "roc_auc_by_as_of": {format_day_or_time(d): _rounded(roc_auc(*by_date[d])) for d in sorted(by_date)},
        "lift_by_decile": [{k: round(v, 4) for k, v in row.items()} for row in lift_table(panel.risk, panel.churns)],
        "churn_ahead": {
            **panels.ahead.summary(),
            "rows_excluded_already_churned": panels.ahead.excluded_churned,
        },
        "alerts": {
            "episodes_opened_in_window": right + wrong + unknown + after_churn,
            "right": right,
            "wrong": wrong,
            "not_known_yet": unknown,
            "raised_after_churn": after_churn,
            "precision": _rounded(right / judged) if judged else None,
            "at_risk_alerts_in_window": raised,
            "at_risk_per_user_month": _rounded(raised / user_months) if user_months > 0 else None,
            f"flap_rate_{FLAP_QUIET_DAYS}d": _rounded(flapped / raised) if raised else None,
        },
        "churners_in_window": n_churners,
        "churners_flagged_before_churn": len(all_leads),
        "recall": _rounded(len(all_leads) / n_churners) if n_churners else None,
        "median_lead_days": _rounded(median(all_leads), 2),
        "churners_flagged_only_after_churn": len(all_delays),
        "median_days_to_flag_after_churn": _rounded(median(all_delays), 2),
        "by_persona": {
            p: {
                "churners": n,
                "flagged": len(leads.get(p, ())),
                "recall": _rounded(len(leads.get(p, ())) / n),
                "median_lead_days": _rounded(median(leads.get(p, [])), 2),
                "flagged_only_after_churn": len(delays.get(p, ())),
                "median_days_to_flag_after_churn": _rounded(median(delays.get(p, [])), 2),
            }
            for p, n in sorted(churners.items())
            if p
        },
    }
