"""`python -m bench [name ...]`: run the benchmarks and print their figures beside their baselines."""

import importlib
import sys

BENCHMARKS: list[str] = ["graphql_pacing", "webhook_ingress", "tracking_page"]


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    for name in names:
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
