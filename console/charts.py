"""Charts as server-rendered inline SVG: no chart library, no script."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape

from markupsafe import Markup

PALETTE = ("#1f6f8b", "#e07a1f", "#b23a48", "#5b8c3a", "#6b4c9a")


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def line_chart(
    labels: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str,
    width: int = 640, height: int = 220, unit: str = "",
) -> Markup:
    """One or more series over the same x labels (e.g. PAR per business date)."""
    pad_l, pad_r, pad_t, pad_b = 48, 12, 16, 28
    values = [v for s in series.values() for v in s]
    top = max(values) if values else 1.0
    top = top if top > 0 else 1.0
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return pad_l + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)

    def y(v: float) -> float:
        return pad_t + inner_h - inner_h * v / top

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for frac in (0.0, 0.5, 1.0):
        gy = _fmt(y(top * frac))
        parts.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{gy}" y2="{gy}" '
                     'class="grid"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{gy}" class="axis" text-anchor="end" '
                     f'dominant-baseline="middle">{top * frac:.2f}{escape(unit)}</text>')
    step = max(1, n // 6)
    for i, label in enumerate(labels):
        if i % step == 0 or i == n - 1:
            parts.append(f'<text x="{_fmt(x(i))}" y="{height - 8}" class="axis" '
                         f'text-anchor="middle">{escape(label)}</text>')
    for k, (name, points) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        coords = " ".join(f"{_fmt(x(i))},{_fmt(y(v))}" for i, v in enumerate(points))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{coords}"><title>{escape(name)}</title></polyline>')
        for i, v in enumerate(points):
            parts.append(f'<circle cx="{_fmt(x(i))}" cy="{_fmt(y(v))}" r="3" fill="{colour}">'
                         f"<title>{escape(name)} {escape(labels[i])}: {v:.2f}{escape(unit)}"
                         "</title></circle>")
        parts.append(f'<text x="{pad_l + 8 + 110 * k}" y="{pad_t - 4}" class="legend" '
                     f'fill="{colour}">■ {escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def bar_chart(bars: Sequence[tuple[str, Decimal | float]], *, title: str,
              width: int = 640, bar_h: int = 26, value_text: Sequence[str] = ()) -> Markup:
    """Horizontal bars (e.g. outstanding principal per arrears bucket)."""
    label_w, pad = 90, 8
    height = pad * 2 + bar_h * max(len(bars), 1)
    top = max((float(v) for _, v in bars), default=1.0) or 1.0
    inner = width - label_w - 140
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(bars):
        y = pad + i * bar_h
        w = inner * float(value) / top
        text = value_text[i] if i < len(value_text) else f"{float(value):.2f}"
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h / 2:.1f}" class="axis" '
                     f'text-anchor="end" dominant-baseline="middle">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1.0):.1f}" '
                     f'height="{bar_h - 6}" fill="{colour}" rx="3"/>')
        parts.append(f'<text x="{label_w + max(w, 1.0) + 6:.1f}" y="{y + bar_h / 2:.1f}" '
                     f'class="axis" dominant-baseline="middle">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
