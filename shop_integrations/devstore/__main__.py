"""`python -m shop_integrations.devstore serve ...` runs the dev store; other sub-commands drive it.

serve --host 127.0.0.1 --port 8100 --data DIR --api-key K --api-secret S [--app-url URL]
      [--public-url URL] [--auto-approve] [--token-lifetime 3600] [--refresh-token-lifetime 2592000]
      [--bucket-size 1000] [--restore-rate 100] [--webhook-retry-delays 1,5,30] [--verbose]
<action> --base-url http://127.0.0.1:8100 --shop SHOP [--json '{...}']   (see README.md)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def serve(args) -> int:
    from werkzeug.serving import make_server

    from .server import Config, DevStore

    config = Config(
        data=args.data,
        api_key=args.api_key,
        api_secret=args.api_secret,
        host=args.host,
        port=args.port,
        app_url=args.app_url or "",
        public_url=args.public_url or "",
        auto_approve=args.auto_approve,
        token_lifetime=args.token_lifetime,
        refresh_token_lifetime=args.refresh_token_lifetime,
        bucket_size=args.bucket_size,
        restore_rate=args.restore_rate,
    )
    if args.webhook_retry_delays:
        config.webhook_retry_delays = tuple(float(x) for x in args.webhook_retry_delays.split(",") if x)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(args.host, args.port, None, threaded=True)
    config.port = server.server_port  # --port 0 picks a free port
    devstore = DevStore(config)
    server.app = devstore
    devstore.start_background()
    print(f"devstore ready on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        devstore.webhooks.stop()
    return 0


def run_action(args) -> int:
    from .control import DevStoreControl

    ctl = DevStoreControl(args.base_url)
    payload = json.loads(args.json) if args.json else {}
    method = getattr(ctl, args.command.replace("-", "_"))
    if args.command in ("create-shop",):
        result = method(args.shop, **payload)
    elif args.command in ("set-faults", "flush-webhooks", "settings"):
        result = method(**payload)
    else:
        result = method(args.shop, **payload)
    print(json.dumps(result, indent=2, default=str))
    return 0


ACTIONS = [
    "create-shop",
    "seed",
    "place-order",
    "cancel-order",
    "refund-order",
    "fulfill-order",
    "add-tracking-event",
    "set-consent",
    "uninstall-app",
    "create-customer",
    "stats",
    "tokens",
    "set-faults",
    "flush-webhooks",
    "settings",
    "session-token",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shop_integrations.devstore")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the dev store")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8100)
    s.add_argument("--data", required=True, help="folder for the SQLite file and bulk results")
    s.add_argument("--api-key", required=True)
    s.add_argument("--api-secret", required=True)
    s.add_argument("--app-url", default="", help="redirect_uri must be on this origin when given")
    s.add_argument(
        "--public-url",
        default="",
        help="base URL the store is reachable at (storefront links: {public-url}/s/{shop}); "
        "default http://HOST:PORT",
    )
    s.add_argument("--auto-approve", action="store_true", help="skip the Install page")
    s.add_argument("--token-lifetime", type=int, default=3600)
    s.add_argument("--refresh-token-lifetime", type=int, default=2592000)
    s.add_argument("--bucket-size", type=int, default=1000)
    s.add_argument("--restore-rate", type=int, default=100)
    s.add_argument("--webhook-retry-delays", default="", help="comma-separated seconds, e.g. 0.2,0.5,1")
    s.add_argument("--verbose", action="store_true")
    for name in ACTIONS:
        a = sub.add_parser(name)
        a.add_argument("--base-url", default="http://127.0.0.1:8100")
        a.add_argument("--shop", default="")
        a.add_argument("--json", default="", help="keyword arguments as a JSON object")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return run_action(args)


if __name__ == "__main__":
    raise SystemExit(main())
