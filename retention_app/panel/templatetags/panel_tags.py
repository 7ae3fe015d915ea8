from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def heat(value) -> str:
    """Background opacity (0.05-1) for a percentage cell of the cohort heatmap."""
    if value is None:
        return "0"
    return f"{0.05 + 0.95 * float(min(max(Decimal(value), 0), 100)) / 100:.2f}"


@register.filter
def pct(value) -> str:
    return "—" if value is None else f"{value} %"


@register.filter
def dash(value) -> str:
    return "—" if value is None or value == "" else str(value)
