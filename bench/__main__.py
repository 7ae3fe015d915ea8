"""`python -m bench [name ...]`: run the benchmarks and print their figures beside their baselines."""

import importlib
import sys

# One per performance target in the issues; each prints figures beside a baseline from the same run.
BENCHMARKS: list[str] = [
    "webhook_ingress",  # issue 2: ingress vs a bare Django view (gunicorn + wrk)
    "devstore_seed",  # issue 3: seeding 100k orders, bulk export memory
    "graphql_pacing",  # issue 4: share of the restore rate used, zero THROTTLED
    "backfill",  # issue 4: bulk JSONL -> PostgreSQL vs COPY, 100k and 1M orders
    "messages",  # issue 5: 100k due messages through the worker vs a raw smtplib loop
    "tracking_page",  # issue 6: tracking page vs a static file of the same size
    "dashboard",  # issue 7: whole dashboard at 1M orders vs pandas
]


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    for name in names:
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
