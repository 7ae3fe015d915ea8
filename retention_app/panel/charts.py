"""Tiny inline SVG charts (no JavaScript): numbers in, escaped SVG markup out."""

from __future__ import annotations

from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

COLORS = {"retention": "#2563eb", "churn": "#dc2626", "sent": "#059669"}


def line_chart(
    *, labels: list[str], lines: list[tuple[str, list[Decimal | None]]], width: int = 600, height: int = 180
) -> SafeString:
    """Percent lines (0-100) over `labels`; None values leave a gap."""
    pad_l, pad_b, pad_t = 34, 22, 8
    n = max(len(labels), 1)
    step = (width - pad_l - 8) / max(n - 1, 1)
    plot_h = height - pad_b - pad_t

    def xy(i: int, v: Decimal) -> str:
        y = pad_t + plot_h * (1 - float(min(max(v, 0), 100)) / 100)
        return f"{pad_l + i * step:.1f},{y:.1f}"

    grid = format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"/><text x="2" y="{}" class="axis">{}%</text>',
        (
            (
                pad_l,
                width - 8,
                pad_t + plot_h * (1 - p / 100),
                pad_t + plot_h * (1 - p / 100),
                pad_t + plot_h * (1 - p / 100) + 4,
                p,
            )
            for p in (0, 50, 100)
        ),
    )
    polylines = []
    for name, values in lines:
        segments, current = [], []
        for i, v in enumerate(values):
            if v is None:
                if current:
                    segments.append(current)
                current = []
            else:
                current.append(xy(i, v))
        if current:
            segments.append(current)
        for seg in segments:
            polylines.append(
                format_html(
                    '<polyline fill="none" stroke="{}" stroke-width="2" points="{}">'
                    "<title>{}</title></polyline>",
                    COLORS.get(name, "#555"),
                    " ".join(seg),
                    name,
                )
            )
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" class="axis" text-anchor="middle">{}</text>',
        ((f"{pad_l + i * step:.1f}", height - 6, label) for i, label in enumerate(labels) if i % 2 == 0),
    )
    return format_html(
        '<svg viewBox="0 0 {} {}" class="chart" role="img" preserveAspectRatio="none">{}{}{}</svg>',
        width,
        height,
        grid,
        SafeString("".join(polylines)),
        ticks,
    )


def bar_chart(
    *, labels: list[str], values: list[Decimal | int], width: int = 600, height: int = 140
) -> SafeString:
    """Vertical bars (e.g. revenue per month); the tallest bar fills the height."""
    pad_b, pad_t = 20, 8
    n = max(len(labels), 1)
    slot = (width - 8) / n
    top = max([float(v) for v in values] + [0.0]) or 1.0
    plot_h = height - pad_b - pad_t
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#059669"><title>{}: {}</title></rect>'
        '<text x="{}" y="{}" class="axis" text-anchor="middle">{}</text>',
        (
            (
                f"{4 + i * slot + slot * 0.15:.1f}",
                f"{pad_t + plot_h * (1 - float(v) / top):.1f}",
                f"{slot * 0.7:.1f}",
                f"{plot_h * float(v) / top:.1f}",
                label,
                v,
                f"{4 + i * slot + slot / 2:.1f}",
                height - 6,
                label[2:] if len(label) == 7 else label,
            )
            for i, (label, v) in enumerate(zip(labels, values, strict=True))
        ),
    )
    return format_html(
        '<svg viewBox="0 0 {} {}" class="chart" role="img" preserveAspectRatio="none">{}</svg>',
        width,
        height,
        bars,
    )
