"""Retention report of one shop:

    python manage.py retention_report --shop DOMAIN --start YYYY-MM-DD --end YYYY-MM-DD
        [--window-days N] --json

With --json: prints exactly one JSON object (keys S, E, N, retention_rate, churn_rate, repeat_purchase_rate,
cohorts), the same as GET /api/v1/metrics/retention. Without it: a readable summary. Unknown shop, bad
dates, end <= start or a bad window exit non-zero with a message on stderr.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from retention_app.metrics.selectors import MetricsInputError, parse_date, retention_report
from retention_app.shops.models import Shop


class Command(BaseCommand):
    help = "Retention metrics of one shop for the period [start, end) in the shop's time zone."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="shop domain, e.g. acme.myshopify.com")
        parser.add_argument("--start", required=True, help="first day of the period, YYYY-MM-DD (included)")
        parser.add_argument("--end", required=True, help="day after the period, YYYY-MM-DD (excluded)")
        parser.add_argument("--window-days", type=int, default=None, help="activity window W in days")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        shops = list(Shop.objects.filter(domain=options["shop"].strip().lower())[:2])
        if not shops:
            raise CommandError(f"unknown shop: {options['shop']!r}")
        if len(shops) > 1:
            raise CommandError(f"shop domain {options['shop']!r} is ambiguous (several platforms)")
        try:
            start = parse_date(options["start"], name="--start")
            end = parse_date(options["end"], name="--end")
            report = retention_report(shop=shops[0], start=start, end=end, window_days=options["window_days"])
        except MetricsInputError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(report.contract_dict()))
            return
        data = report.value_dict()
        lines = [
            f"{report.shop_domain}  [{report.start}, {report.end})  W={report.window_days} days  "
            f"tz={report.timezone}",
            f"S={report.S}  E={report.E}  N={report.N}  churned={report.churned}",
            f"retention rate {_pct(report.retention_rate)}  churn rate {_pct(report.churn_rate)}  "
            f"repeat purchase rate {_pct(report.repeat_purchase_rate)}",
            f"AOV {data['average_order_value']} {report.currency}  frequency {data['purchase_frequency']}  "
            f"lifespan {data['lifespan_periods']} periods  CLV {data['customer_lifetime_value']} "
            f"{report.currency}",
            "cohorts:",
        ]
        for row in report.cohorts:
            cells = " ".join(f"{p:>6}" for p in row.retention)
            lines.append(f"  {row.cohort} n={row.size:<6} {cells}")
        self.stdout.write("\n".join(lines))


def _pct(value) -> str:
    return "n/a" if value is None else f"{value} %"
