"""Helpers for the dev store's own tests: a shop with an access token (no OAuth needed)."""

from __future__ import annotations

import dataclasses

import pytest
import requests


@dataclasses.dataclass
class Admin:
    """The Admin API of one dev store shop, as the app would call it."""

    devstore: object
    shop: str
    token: str

    @property
    def control(self):
        return self.devstore.control

    def post(
        self, query: str, variables: dict | None = None, *, token: str | None = None
    ) -> requests.Response:
        return self.control.graphql(self.shop, self.token if token is None else token, query, variables)

    def gql(self, query: str, variables: dict | None = None) -> dict:
        """The decoded answer; fails the test on HTTP errors."""
        resp = self.post(query, variables)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def data(self, query: str, variables: dict | None = None) -> dict:
        answer = self.gql(query, variables)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]


@pytest.fixture
def admin(devstore, devstore_shop) -> Admin:
    token = devstore.control.grant_token(devstore_shop)["access_token"]
    return Admin(devstore, devstore_shop, token)
