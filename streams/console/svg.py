"""SVG charts drawn by the project for the console: sparklines, line charts, the quadrant, bars.

Why our own: the pages must work without internet access and without third-party code copied
into the repository; four small chart kinds are a few lines each. Every function returns an SVG
string (text escaped) that the templates insert as markup.

>>> sparkline([1, 3, 2], lo=0, hi=4).startswith('<svg')
True
"""

from __future__ import annotations

import math
from html import escape
from typing import Callable, Sequence

__all__ = ["sparkline", "line_chart", "quadrant", "bars", "mrr_chart", "COLORS", "ACTION_COLORS", "MOVEMENT_COLORS"]

COLORS = {"health": "#2a7ab0", "temperature": "#d9822b", "risk": "#c23b3b", "won": "#3c9d5d", "lost": "#c23b3b",
          "grid": "#e3e6ea", "ink": "#4a5560"}
# MRR movements (ChartMogul's classes): gains drawn above the axis, losses below
MOVEMENT_COLORS = {"new": "#3c9d5d", "expansion": "#8cc79c", "reactivation": "#2a7ab0", "contraction": "#e6a15c",
                   "churned": "#c23b3b"}


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


#: The width of a tick label's character (11 px system-ui, console.css: digits ~6.2 px) and the gap
#: kept between two labels.
_TICK_CHAR_PX, _TICK_GAP_PX = 6.2, 4.0


def _x_ticks(x_labels: Sequence[str], x: Callable[[int], float], height: int) -> list[str]:
    """At most eight x labels, as many as fit side by side (QA17 F11: twelve "2026-01" month labels
    overlapped on a 600-px chart), and the last one when it clears the one before: a year of weeks
    or months stays readable.

    >>> months = [f"2026-{m:02d}" for m in range(1, 13)]
    >>> [t.split(">")[1][:7] for t in _x_ticks(months, lambda i: 48 + (i + 0.5) * 44, 220)]
    ['2026-01', '2026-03', '2026-05', '2026-07', '2026-09', '2026-11']
    """
    n = len(x_labels)
    if n == 0:
        return []
    label_px = _TICK_CHAR_PX * max(len(lab) for lab in x_labels) + _TICK_GAP_PX
    step_px = abs(x(1) - x(0)) if n > 1 else label_px
    every = max(1, n // 8, math.ceil(label_px / max(step_px, 1e-9)))
    shown = [i for i in range(n) if i % every == 0]
    if shown[-1] != n - 1 and (n - 1 - shown[-1]) * step_px >= label_px:
        shown.append(n - 1)
    return [f'<text x="{_fmt(x(i))}" y="{height - 8}" text-anchor="middle" class="tick">{escape(x_labels[i])}</text>'
            for i in shown]


def sparkline(values: Sequence[float], *, lo: float, hi: float, width: int = 90, height: int = 22,
              color: str = COLORS["health"], label: str = "") -> str:
    """A small trend line; the last value is a dot. One value draws the dot alone."""
    if not values:
        return ""
    span = (hi - lo) or 1.0
    n = len(values)
    step = (width - 6) / max(n - 1, 1)
    pts = [(3 + i * step if n > 1 else width - 3, height - 3 - (v - lo) / span * (height - 6)) for i, v in enumerate(values)]
    path = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in pts)
    lx, ly = pts[-1]
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(label)}"><polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}"/>'
            f'<circle cx="{_fmt(lx)}" cy="{_fmt(ly)}" r="2.5" fill="{color}"/></svg>')


def line_chart(x_labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float | None]]], *, lo: float, hi: float,
               width: int = 600, height: int = 220, y_ticks: Sequence[float] = (), y_format: str = "{:g}") -> str:
    """Lines over shared x positions; ``series`` = (name, colour, values), None = no value there."""
    left, right, top, bottom = 40, 24, 26, 28
    iw, ih = width - left - right, height - top - bottom
    n = len(x_labels)
    span = (hi - lo) or 1.0
    x = lambda i: left + (i * iw / max(n - 1, 1) if n > 1 else iw)  # noqa: E731
    y = lambda v: top + ih - (v - lo) / span * ih  # noqa: E731
    out = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for t in y_ticks:
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y(t))}" y2="{_fmt(y(t))}" stroke="{COLORS["grid"]}"/>'
                   f'<text x="{left - 6}" y="{_fmt(y(t) + 4)}" text-anchor="end" class="tick">{escape(y_format.format(t))}</text>')
    out.extend(_x_ticks(x_labels, x, height))
    lx = left
    for name, color, values in series:
        known = [(i, v) for i, v in enumerate(values) if v is not None]
        pts = " ".join(f"{_fmt(x(i))},{_fmt(y(v))}" for i, v in known)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        out.extend(f'<circle cx="{_fmt(x(i))}" cy="{_fmt(y(v))}" r="2.5" fill="{color}"/>' for i, v in known)
        out.append(f'<rect x="{lx}" y="6" width="10" height="10" fill="{color}"/>'
                   f'<text x="{lx + 14}" y="15" class="legend">{escape(name)}</text>')
        lx += 14 + 8 * len(name) + 18
    out.append("</svg>")
    return "".join(out)


ACTION_COLORS = {"check_in": "#d9822b", "educate": "#8e5bb5", "upsell": "#2a7ab0", "win_back": "#c23b3b", "onboard": "#3c9d5d",
                 "none": "#7d8a96"}


def quadrant(points: Sequence[tuple[float, float, str, str, str]], *, cut_health: float, cut_temperature: float,
             size: int = 560) -> str:
    """Health (x) against temperature (y), 0-100, with the four action zones of the seeds.

    ``points`` = (health, temperature, action, label, href): a dot per user, coloured by the
    recommended action (which also looks at stage and purchases), linking to the user's page.
    """
    pad, legend = 40, 30
    inner = size - 2 * pad
    x = lambda h: pad + h / 100 * inner  # noqa: E731
    y = lambda t: legend + pad + inner - t / 100 * inner  # noqa: E731
    cx, cy = x(cut_health), y(cut_temperature)
    top, bottom, right = legend + pad, legend + pad + inner, pad + inner
    zones = [  # (x0, y0, x1, y1, fill, label, anchor corner)
        (pad, top, cx, cy, "#f7f0fb", "EDUCATE: pays, does not use", "tl"),
        (cx, top, right, cy, "#eef7f1", "KEEP: uses and pays", "tr"),
        (pad, cy, cx, bottom, "#fbefef", "CHECK IN / ONBOARD / WIN BACK", "bl"),
        (cx, cy, right, bottom, "#edf4fa", "UPSELL: uses, does not pay", "br"),
    ]
    h_svg = size + legend
    out = [f'<svg class="quadrant" width="{size}" height="{h_svg}" viewBox="0 0 {size} {h_svg}" role="img">']
    for x0, y0, x1, y1, fill, label, corner in zones:
        out.append(f'<rect x="{_fmt(x0)}" y="{_fmt(y0)}" width="{_fmt(x1 - x0)}" height="{_fmt(y1 - y0)}" fill="{fill}"/>')
        tx, anchor = (x0 + 6, "start") if corner[1] == "l" else (x1 - 6, "end")
        ty = y0 + 15 if corner[0] == "t" else y1 - 7
        out.append(f'<text x="{_fmt(tx)}" y="{_fmt(ty)}" text-anchor="{anchor}" class="zone">{escape(label)}</text>')
    out.append(f'<rect x="{pad}" y="{top}" width="{inner}" height="{inner}" fill="none" stroke="{COLORS["ink"]}"/>')
    for h, t, action, label, href in points:
        color = ACTION_COLORS.get(action, ACTION_COLORS["none"])
        out.append(f'<a href="{escape(href)}"><circle cx="{_fmt(x(h))}" cy="{_fmt(y(t))}" r="4" fill="{color}" '
                   f'fill-opacity="0.75" stroke="#fff" stroke-width="0.8"><title>{escape(label)}</title></circle></a>')
    lx = pad
    for action, color in ACTION_COLORS.items():
        name = action.replace("_", " ")
        out.append(f'<circle cx="{lx + 5}" cy="14" r="5" fill="{color}"/><text x="{lx + 14}" y="18" class="legend">{escape(name)}</text>')
        lx += 24 + 7 * len(name) + 10
    out.append(f'<text x="{pad + inner / 2}" y="{h_svg - 8}" text-anchor="middle" class="axis">health</text>'
               f'<text x="12" y="{top + inner / 2}" text-anchor="middle" class="axis" transform="rotate(-90 12 {top + inner / 2})">temperature</text>')
    for v in (0, 50, 100):
        out.append(f'<text x="{_fmt(x(v))}" y="{bottom + 14}" text-anchor="middle" class="tick">{v}</text>'
                   f'<text x="{pad - 6}" y="{_fmt(y(v) + 4)}" text-anchor="end" class="tick">{v}</text>')
    out.append("</svg>")
    return "".join(out)


def _value(v: float) -> str:
    """A bar's value: a count whole, an amount to the cent (QA17 F11: purchases read "11,899" for 11,899.30).

    >>> _value(12.0), _value(11899.3)
    ('12', '11,899.30')
    """
    return f"{v:,.0f}" if v == round(v) else f"{v:,.2f}"


def bars(x_labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]], *, width: int = 600,
         height: int = 220) -> str:
    """Grouped bars (e.g. customers won and lost per week), legend on top."""
    left, right, top, bottom = 48, 24, 26, 28
    iw, ih = width - left - right, height - top - bottom
    n, k = len(x_labels), max(len(series), 1)
    hi = math.ceil(max([v for _, _, vals in series for v in vals] + [1]))
    hi += hi % 2  # an even whole top, so the middle tick is a whole number too (1 gave ticks 0, "0", 1)
    group = iw / max(n, 1)
    bw = max(group * 0.8 / k, 1)
    out = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for frac in (0, 0.5, 1):
        yv = top + ih - frac * ih
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{_fmt(yv)}" y2="{_fmt(yv)}" stroke="{COLORS["grid"]}"/>'
                   f'<text x="{left - 6}" y="{_fmt(yv + 4)}" text-anchor="end" class="tick">{hi * frac:,.0f}</text>')
    for j, (name, color, vals) in enumerate(series):
        for i, v in enumerate(vals):
            h = v / hi * ih
            out.append(f'<rect x="{_fmt(left + i * group + group * 0.1 + j * bw)}" y="{_fmt(top + ih - h)}" width="{_fmt(bw)}" '
                       f'height="{_fmt(h)}" fill="{color}"><title>{escape(name)} {escape(x_labels[i])}: {_value(v)}</title></rect>')
        out.append(f'<rect x="{left + j * 110}" y="6" width="10" height="10" fill="{color}"/>'
                   f'<text x="{left + j * 110 + 14}" y="15" class="legend">{escape(name)}</text>')
    out.extend(_x_ticks(x_labels, lambda i: left + (i + 0.5) * group, height))
    out.append("</svg>")
    return "".join(out)


def mrr_chart(x_labels: Sequence[str], start_mrr: Sequence[float], movements: Sequence[dict[str, float]], *,
              width: int = 600, height: int = 240) -> str:
    """MRR over time: per period the start MRR (line) and the five movements as stacked bars,
    gains (new, expansion, reactivation) above the zero line and losses (contraction, churned)
    below it; ``movements`` = one dict per period, amounts as positive numbers.

    >>> mrr_chart(["Jan"], [0.0], [{"new": 50.0, "churned": 10.0}]).count("<rect")  # two bars, six legend keys
    8
    """
    left, right, top, bottom = 56, 24, 26, 28
    iw, ih = width - left - right, height - top - bottom
    n = len(x_labels)
    gains, losses = ("new", "expansion", "reactivation"), ("contraction", "churned")
    hi = max([*start_mrr, *(sum(m.get(k, 0.0) for k in gains) for m in movements), 1.0])
    lo = -max([*(sum(m.get(k, 0.0) for k in losses) for m in movements), 0.0]) or 0.0  # never -0.0: a "-0" tick
    span = hi - lo
    y = lambda v: top + (hi - v) / span * ih  # noqa: E731
    group = iw / max(n, 1)
    bw = max(group * 0.5, 1)
    out = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for v in sorted({v for v in (lo, 0.0, hi) if v == 0.0 or round(v)}):  # losses under 0.5 would tick "-0"
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y(v))}" y2="{_fmt(y(v))}" stroke="{COLORS["grid"] if v else COLORS["ink"]}"/>'
                   f'<text x="{left - 6}" y="{_fmt(y(v) + 4)}" text-anchor="end" class="tick">{v:,.0f}</text>')
    for i, m in enumerate(movements):
        x0 = left + i * group + (group - bw) / 2
        up = down = 0.0
        for k in (*gains, *losses):
            v = m.get(k, 0.0)
            if v <= 0:
                continue
            y0, y1 = (y(up + v), y(up)) if k in gains else (y(-down), y(-down - v))
            up, down = (up + v, down) if k in gains else (up, down + v)
            out.append(f'<rect x="{_fmt(x0)}" y="{_fmt(y0)}" width="{_fmt(bw)}" height="{_fmt(y1 - y0)}" fill="{MOVEMENT_COLORS[k]}">'
                       f'<title>{escape(k)} {escape(x_labels[i])}: {v:,.2f}</title></rect>')
    cx = lambda i: left + (i + 0.5) * group  # noqa: E731
    pts = " ".join(f"{_fmt(cx(i))},{_fmt(y(v))}" for i, v in enumerate(start_mrr))
    out.append(f'<polyline fill="none" stroke="{COLORS["ink"]}" stroke-width="2" points="{pts}"/>')
    out.extend(f'<circle cx="{_fmt(cx(i))}" cy="{_fmt(y(v))}" r="3" fill="{COLORS["ink"]}"><title>start MRR '
               f'{escape(x_labels[i])}: {v:,.2f}</title></circle>' for i, v in enumerate(start_mrr))
    lx = left
    for name, color in (("start MRR", COLORS["ink"]), *MOVEMENT_COLORS.items()):
        out.append(f'<rect x="{lx}" y="6" width="10" height="10" fill="{color}"/><text x="{lx + 14}" y="15" class="legend">{escape(name)}</text>')
        lx += 14 + 7 * len(name) + 14
    out.extend(_x_ticks(x_labels, cx, height))
    out.append("</svg>")
    return "".join(out)
