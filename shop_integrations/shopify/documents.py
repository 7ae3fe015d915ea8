"""GraphQL documents, one file each: shop_integrations/shopify/graphql/<name>.graphql.

    from shop_integrations.shopify.documents import load
    data = ShopifyClient.for_shop(shop).execute(load("shop"), {})

Every file in that folder is validated against the pinned Admin schema by the test suite
(tests/shopify/test_graphql_documents.py), so a typo fails CI, not production.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

GRAPHQL_DIR = Path(__file__).resolve().parent / "graphql"
_NAME_RE = re.compile(r"[a-z0-9_]+\Z")


@cache
def load(name: str) -> str:
    """The text of graphql/<name>.graphql (cached). Raises FileNotFoundError for an unknown name and
    ValueError for a name that is not [a-z0-9_]+ (no paths)."""
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid GraphQL document name {name!r}")
    return (GRAPHQL_DIR / f"{name}.graphql").read_text(encoding="utf-8")


def all_names() -> list[str]:
    return sorted(p.stem for p in GRAPHQL_DIR.glob("*.graphql"))
