"""Every GraphQL document the app sends is valid against the pinned Admin schema (2026-01)."""

from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

from shop_integrations.shopify import documents

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "shop_integrations/schema/shopify_admin_2026-01.graphql"


@pytest.fixture(scope="session")
def admin_schema():
    # Building the schema takes seconds: once per test session.
    schema = build_schema(SCHEMA_PATH.read_text(encoding="utf-8"), assume_valid_sdl=True)
    # Shopify's published SDL breaks a few type-system rules of the spec (deprecated implementations of
    # non-deprecated interface fields). Those concern the schema, not our documents: mark the schema as
    # already validated so graphql-core validates documents against it as Shopify's server does.
    schema._validation_errors = []
    return schema


@pytest.mark.parametrize("name", documents.all_names())
def test_document_is_valid_against_admin_schema(admin_schema, name):
    errors = validate(admin_schema, parse(documents.load(name)))
    assert errors == [], f"{name}.graphql: " + "; ".join(e.message for e in errors)


def test_there_are_documents_and_names_are_safe():
    assert {"shop", "webhook_subscription_create", "webhook_subscription_delete"} <= set(
        documents.all_names()
    )
    with pytest.raises(ValueError):
        documents.load("../settings")


def test_validation_catches_a_bad_document(admin_schema):
    errors = validate(admin_schema, parse("query { shop { noSuchField } }"))
    assert errors
