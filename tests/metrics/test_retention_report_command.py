"""The exact output contract of `manage.py retention_report`."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.metrics.test_definitions import basic_history

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("retention_report", *args, stdout=out)
    return out.getvalue()


def test_json_output_is_exactly_one_object(shop, history):
    basic_history(history)
    history.order("A", "2026-04-02 10:00")  # extends the cohort table to April
    out = run(
        "--shop", shop.domain, "--start", "2026-03-01", "--end", "2026-04-01", "--window-days", "30", "--json"
    )
    assert out.count("\n") == 1 and out.endswith("\n")
    data = json.loads(out)
    assert list(data) == ["S", "E", "N", "retention_rate", "churn_rate", "repeat_purchase_rate", "cohorts"]
    assert data == {
        "S": 2,
        "E": 3,
        "N": 1,
        "retention_rate": 100.0,
        "churn_rate": 50.0,
        "repeat_purchase_rate": 66.67,
        "cohorts": [
            {"cohort": "2025-06", "size": 1, "retention": [100.0] + [0.0] * 8 + [100.0, 0.0]},
            {"cohort": "2026-01", "size": 1, "retention": [100.0, 0.0, 0.0, 0.0]},
            {"cohort": "2026-02", "size": 2, "retention": [100.0, 50.0, 50.0]},
            {"cohort": "2026-03", "size": 1, "retention": [100.0, 0.0]},
        ],
    }


def test_null_rates_when_undefined(shop):
    data = json.loads(run("--shop", shop.domain, "--start", "2026-03-01", "--end", "2026-04-01", "--json"))
    assert data == {
        "S": 0,
        "E": 0,
        "N": 0,
        "retention_rate": None,
        "churn_rate": None,
        "repeat_purchase_rate": None,
        "cohorts": [],
    }


def test_human_output(shop, history):
    basic_history(history)
    out = run("--shop", shop.domain, "--start", "2026-03-01", "--end", "2026-04-01", "--window-days", "30")
    assert "S=2  E=3  N=1" in out and "retention rate 100.00 %" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shop", "nope.myshopify.com", "--start", "2026-03-01", "--end", "2026-04-01"], "unknown shop"),
        (["--shop", "acme.myshopify.com", "--start", "2026-13-01", "--end", "2026-04-01"], "--start must be"),
        (["--shop", "acme.myshopify.com", "--start", "2026-03-01", "--end", "03/04/2026"], "--end must be"),
        (["--shop", "acme.myshopify.com", "--start", "2026-04-01", "--end", "2026-04-01"], "must be after"),
        (
            [
                "--shop",
                "acme.myshopify.com",
                "--start",
                "2026-03-01",
                "--end",
                "2026-04-01",
                "--window-days",
                "0",
            ],
            "window_days",
        ),
    ],
)
def test_bad_input_fails_with_message(shop, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args, "--json")
