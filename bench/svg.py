"""Minimal SVG line charts (matplotlib is not installed where the report is written).

One function, ``line_chart``: named series of (x, y) points, optional log axes, a legend. Enough for
throughput-versus-concurrency and latency CDFs, readable in any browser and on GitHub.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["line_chart", "nice_ticks"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
_W, _H = 720, 420
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 200, 40, 50


def nice_ticks(low: float, high: float, log: bool, count: int = 6) -> list[float]:
    """Tick positions covering [low, high]: powers of ten on a log axis, 1-2-5 steps on a linear one."""
    if log:
        start, stop = math.floor(math.log10(low)), math.ceil(math.log10(high))
        return [10.0**e for e in range(start, stop + 1)]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = [round(first, 10)]
    while ticks[-1] < high:  # the last tick covers the maximum, so no point falls off the axis
        ticks.append(round(first + len(ticks) * step, 10))
    return ticks


def _label(value: float) -> str:
    if value >= 1000 and float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:g}"


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
    hlines: Mapping[str, float] | None = None,
) -> str:
    """An SVG document with one polyline (and markers) per series; ``hlines`` draws labelled targets."""
    points = [
        (x, y) for pts in series.values() for x, y in pts if (x > 0 or not logx) and (y > 0 or not logy)
    ]
    extra_y = [v for v in (hlines or {}).values() if v > 0 or not logy]
    if not points:
        points = [(1.0, 1.0)]
    xs, ys = [p[0] for p in points], [p[1] for p in points] + extra_y
    xticks = nice_ticks(min(xs), max(xs), logx)
    yticks = nice_ticks(min(ys) if logy else min(0.0, min(ys)), max(ys), logy)
    x0, x1, y0, y1 = xticks[0], xticks[-1], yticks[0], yticks[-1]

    def fx(x: float) -> float:
        t = (
            (math.log10(x) - math.log10(x0)) / ((math.log10(x1) - math.log10(x0)) or 1)
            if logx
            else (x - x0) / ((x1 - x0) or 1)
        )
        return _LEFT + t * (_W - _LEFT - _RIGHT)

    def fy(y: float) -> float:
        t = (
            (math.log10(y) - math.log10(y0)) / ((math.log10(y1) - math.log10(y0)) or 1)
            if logy
            else (y - y0) / ((y1 - y0) or 1)
        )
        return _H - _BOTTOM - t * (_H - _TOP - _BOTTOM)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" font-family="sans-serif" '
        f'font-size="12">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_W / 2 - _RIGHT / 2:.0f}" y="22" text-anchor="middle" font-size="15">'
        f"{escape(title)}</text>",
    ]
    for x in xticks:
        out.append(f'<line x1="{fx(x):.1f}" y1="{_TOP}" x2="{fx(x):.1f}" y2="{_H - _BOTTOM}" stroke="#ddd"/>')
        out.append(f'<text x="{fx(x):.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle">{_label(x)}</text>')
    for y in yticks:
        out.append(f'<line x1="{_LEFT}" y1="{fy(y):.1f}" x2="{_W - _RIGHT}" y2="{fy(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{fy(y) + 4:.1f}" text-anchor="end">{_label(y)}</text>')
    out.append(
        f'<text x="{(_LEFT + _W - _RIGHT) / 2:.0f}" y="{_H - 12}" text-anchor="middle">'
        f"{escape(xlabel)}</text>"
    )
    out.append(
        f'<text x="16" y="{(_TOP + _H - _BOTTOM) / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(_TOP + _H - _BOTTOM) / 2:.0f})">{escape(ylabel)}</text>'
    )
    for name, value in (hlines or {}).items():
        if logy and value <= 0:
            continue
        out.append(
            f'<line x1="{_LEFT}" y1="{fy(value):.1f}" x2="{_W - _RIGHT}" y2="{fy(value):.1f}" stroke="#555" '
            f'stroke-dasharray="5,4"/>'
        )
        out.append(f'<text x="{_LEFT + 4}" y="{fy(value) - 4:.1f}" fill="#555">{escape(name)}</text>')
    for index, (name, pts) in enumerate(series.items()):
        color = _COLORS[index % len(_COLORS)]
        kept = [(x, y) for x, y in pts if (x > 0 or not logx) and (y > 0 or not logy)]
        if kept:
            path = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in kept)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            if len(kept) <= 20:
                out.extend(
                    f'<circle cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="3" fill="{color}"/>' for x, y in kept
                )
        ly = _TOP + 10 + index * 18
        out.append(
            f'<line x1="{_W - _RIGHT + 12}" y1="{ly}" x2="{_W - _RIGHT + 32}" y2="{ly}" stroke="{color}" '
            f'stroke-width="3"/>'
        )
        out.append(f'<text x="{_W - _RIGHT + 38}" y="{ly + 4}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
