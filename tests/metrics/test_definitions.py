"""Every metric definition of issue 7 on small hand-made histories whose answers are worked out by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from retention_app.metrics.selectors import (
    MetricsInputError,
    cohort_table,
    customers_at_risk,
    retention_report,
    retention_series,
    vip_customers,
)

D = dt.date.fromisoformat
pytestmark = pytest.mark.django_db


def report(shop, start="2026-03-01", end="2026-04-01", window=30):
    return retention_report(shop=shop, start=D(start), end=D(end), window_days=window)


def basic_history(h):
    # W = 30, period [2026-03-01, 2026-04-01): active at start <=> order in [01-30, 03-01);
    # active at end <=> order in [03-02, 04-01).
    h.order("A", "2026-02-10 10:00")  # active at start
    h.order("A", "2026-03-20 10:00")  # and at end
    h.order("B", "2026-02-15 10:00")  # active at start only: churned
    h.order("C", "2026-03-05 10:00")  # new in the period
    h.order("D", "2025-06-01 10:00")  # old customer ...
    h.order("D", "2026-03-25 10:00")  # ... reactivated: active at end, not new
    h.order("E", "2026-01-01 10:00")  # inactive at both ends


def test_s_e_n_retention_churn_repeat(shop, history):
    basic_history(history)
    r = report(shop)
    assert (r.S, r.E, r.N, r.churned) == (2, 3, 1, 1)  # S={A,B}, E={A,C,D}, N={C}
    assert r.retention_rate == Decimal("100.00")  # (3 - 1) / 2
    assert r.churn_rate == Decimal("50.00")  # B / 2
    # Customers with an order in the period: A (2 orders up to end), C (1), D (2): 2/3.
    assert r.repeat_purchase_rate == Decimal("66.67")


def test_reactivated_customer_is_not_new_and_not_in_s(shop, history):
    history.order("D", "2025-06-01 10:00")
    history.order("D", "2026-03-25 10:00")
    r = report(shop)
    assert (r.S, r.E, r.N) == (0, 1, 0)
    assert r.retention_rate is None and r.churn_rate is None  # S = 0: undefined
    assert r.repeat_purchase_rate == Decimal("100.00")


def test_same_day_orders(shop, history):
    history.order("A", "2026-03-10 09:00")
    history.order("A", "2026-03-10 18:00")
    r = report(shop)
    assert (r.S, r.E, r.N) == (0, 1, 1)
    assert r.repeat_purchase_rate == Decimal("100.00")  # two orders up to end
    assert r.orders_in_period == 2 and r.customers_in_period == 1
    assert [c.retention for c in r.cohorts] == [[Decimal("100.00")]]


def test_window_change_changes_activity(shop, history):
    basic_history(history)
    # W = 60: active at start <=> order in [12-31, 03-01): E's 01-01 order now counts; at end
    # <=> [01-31, 04-01): B (02-15) stays active, A and C and D too.
    r = report(shop, window=60)
    assert (r.S, r.E, r.N, r.churned) == (3, 4, 1, 1)  # S={A,B,E}; E={A,B,C,D}; E churned
    assert r.retention_rate == Decimal("100.00")
    assert r.churn_rate == Decimal("33.33")


def test_shop_window_is_default(shop, history):
    basic_history(history)
    shop.activity_window_days = 60
    shop.save()
    r = retention_report(shop=shop, start=D("2026-03-01"), end=D("2026-04-01"))
    assert r.window_days == 60 and r.S == 3


def test_cancelled_and_test_orders_are_excluded(shop, history):
    history.order("A", "2026-02-10 10:00", cancelled=True)  # would make A active at start
    history.order("A", "2026-03-10 10:00")  # so A's first real order is in the period: new
    history.order("B", "2026-03-12 10:00", test=True)  # only a test order: nobody
    history.order("C", "2026-02-20 10:00")
    history.order("C", "2026-03-21 10:00", cancelled=True)  # would keep C active at end
    history.order("C", "2026-03-22 10:00", "10.00", test=True)
    r = report(shop)
    assert (r.S, r.E, r.N, r.churned) == (1, 1, 1, 1)  # S={C}, E={A}, N={A}, C churned
    assert r.retention_rate == Decimal("0.00")
    assert r.churn_rate == Decimal("100.00")
    assert r.repeat_purchase_rate == Decimal("0.00")  # A has one real order
    assert r.orders_in_period == 1 and r.revenue_in_period == Decimal("50.00")
    assert [(c.cohort, c.size) for c in r.cohorts] == [("2026-02", 1), ("2026-03", 1)]


@pytest.fixture
def bangkok(shop):
    shop.timezone = "Asia/Bangkok"  # UTC+7
    shop.save()
    return shop


def test_timezone_boundary_at_end(bangkok, history):
    # 23:30 local on the last day is inside the period; 00:30 local the next day is not (although both
    # are on 2026-03-31 in UTC).
    history.order("X", "2026-03-31 23:30")
    history.order("Y", "2026-04-01 00:30")
    r = report(bangkok)
    assert (r.S, r.E, r.N) == (0, 1, 1)
    assert r.orders_in_period == 1


def test_timezone_boundary_at_start(bangkok, history):
    history.order("X", "2026-02-28 23:30")  # before the period, active at start
    history.order("Y", "2026-03-01 00:30")  # in the period (2026-02-28 17:30 UTC)
    r = report(bangkok)
    assert (r.S, r.N) == (1, 1)
    assert r.churned == 1  # X: 02-28 is before the end window [03-02, 04-01)


def test_timezone_window_edge(bangkok, history):
    # Active at end (2026-04-01) with W = 30 means an order at or after local midnight of 2026-03-02.
    history.order("X", "2026-03-02 00:00")
    history.order("Y", "2026-03-01 23:59")  # one minute too early: counted in the period, not at end
    r = report(bangkok)
    assert r.E == 1 and r.N == 2


def test_value_metrics_and_units(shop, history):
    basic_history(history)
    history.order("A", "2026-03-21 10:00", "150.00")
    r = report(shop)
    # Period orders: A 50 + 150, C 50, D 50 = 300 over 4 orders, 3 customers.
    assert r.average_order_value == Decimal("75.00")
    assert r.purchase_frequency == Decimal("1.3333")
    assert r.lifespan_periods == Decimal("2.0000")  # 1 / churn (50 %)
    assert r.customer_lifetime_value == Decimal("200.00")  # 300 / 3 × 2
    assert r.lifespan_days == Decimal("62.00")  # 2 periods of 31 days
    assert r.value_dict()["units"]["customer_lifetime_value"] == "USD per customer"


def test_cohorts(shop, history):
    history.order("A", "2026-01-05 10:00")
    history.order("A", "2026-01-20 10:00")  # same month twice counts once
    history.order("A", "2026-03-05 10:00")
    history.order("B", "2026-01-31 10:00")
    history.order("B", "2026-02-01 10:00")
    history.order("C", "2026-02-10 10:00")
    history.order("C", "2026-05-01 10:00", cancelled=True)  # cancelled: does not extend the table
    history.order("D", "2026-04-01 10:00", test=True)  # test: no cohort, no month
    rows = cohort_table(shop=shop)
    assert [(r.cohort, r.size, r.retention) for r in rows] == [
        ("2026-01", 2, [Decimal("100.00"), Decimal("50.00"), Decimal("50.00")]),
        ("2026-02", 1, [Decimal("100.00"), Decimal("0.00")]),
    ]


def test_cohorts_use_local_month(bangkok, history):
    history.order("A", "2026-02-01 00:30")  # 2026-01-31 17:30 UTC: February in Bangkok
    history.order("B", "2026-01-31 23:30")
    history.order("B", "2026-02-15 12:00")
    rows = cohort_table(shop=bangkok)
    assert [(r.cohort, r.size, r.retention) for r in rows] == [
        ("2026-01", 1, [Decimal("100.00"), Decimal("100.00")]),
        ("2026-02", 1, [Decimal("100.00")]),
    ]


def test_cohorts_across_year_and_last_months(shop, history):
    history.order("A", "2025-11-15 10:00")
    history.order("A", "2026-01-15 10:00")
    history.order("B", "2026-01-02 10:00")
    rows = cohort_table(shop=shop)
    assert [(r.cohort, r.retention) for r in rows] == [
        ("2025-11", [Decimal("100.00"), Decimal("0.00"), Decimal("100.00")]),
        ("2026-01", [Decimal("100.00")]),
    ]
    assert [r.cohort for r in cohort_table(shop=shop, last_months=2)] == ["2026-01"]


def test_empty_shop(shop):
    r = report(shop)
    assert (r.S, r.E, r.N) == (0, 0, 0)
    assert r.retention_rate is None and r.churn_rate is None and r.repeat_purchase_rate is None
    assert r.average_order_value is None and r.customer_lifetime_value is None
    assert r.cohorts == []


def test_other_shop_orders_never_count(shop, other_shop, history):
    basic_history(history)
    from tests.metrics.conftest import History

    rival = History(other_shop)
    rival.order("Z", "2026-02-10 10:00")
    rival.order("Z", "2026-03-10 10:00")
    assert (report(shop).S, report(shop).E) == (2, 3)
    r = report(other_shop)
    assert (r.S, r.E, r.N) == (1, 1, 0)


@pytest.mark.parametrize(
    ("start", "end", "window"),
    [("2026-03-01", "2026-03-01", 30), ("2026-03-02", "2026-03-01", 30), ("2026-03-01", "2026-04-01", 0)],
)
def test_bad_periods_are_rejected(shop, start, end, window):
    with pytest.raises(MetricsInputError):
        report(shop, start, end, window)


def test_series_matches_single_periods(shop, history):
    basic_history(history)
    history.order("F", "2026-04-10 10:00")
    days = [D("2026-02-01"), D("2026-03-01"), D("2026-04-01"), D("2026-05-01")]
    series = retention_series(shop=shop, days=days, window_days=30)
    for row in series:
        single = report(shop, row["start"].isoformat(), row["end"].isoformat())
        assert (row["S"], row["E"], row["N"]) == (single.S, single.E, single.N)
        assert row["retention_rate"] == single.retention_rate
        assert row["churn_rate"] == single.churn_rate


def test_customers_at_risk_most_valuable_first(shop, history):
    history.order("A", "2025-01-01 10:00", "500.00")  # lapsed, big spender
    history.order("B", "2025-02-01 10:00", "20.00")  # lapsed, small
    history.order("C", "2025-01-01 10:00", "900.00")
    history.order("C", "2026-03-01 10:00", "10.00")  # came back: not at risk
    history.order("D", "2025-01-01 10:00", "999.00", cancelled=True)  # only cancelled: not a customer
    as_of = history.at("2026-03-10 00:00")
    names = [c.first_name for c in customers_at_risk(shop=shop, as_of=as_of, window_days=180)]
    assert names == ["A", "B"]
    first = customers_at_risk(shop=shop, as_of=as_of, window_days=180)[0]
    assert first.spend == Decimal("500.00") and first.order_count == 1


def test_vip_share(shop, history):
    for i, total in enumerate(["10", "20", "30", "40", "50", "60", "70", "80", "90", "100", "5"]):
        history.order(f"C{i}", "2026-01-01 10:00", total)
    history.order("C0", "2026-01-02 10:00", "200")  # C0 total 210: top
    history.order("X", "2026-01-02 10:00", "5000", test=True)
    as_of = history.at("2026-02-01 00:00")
    assert [c.first_name for c in vip_customers(shop=shop, share_percent=10, as_of=as_of)] == ["C0", "C9"]
    assert len(vip_customers(shop=shop, share_percent=50, as_of=as_of)) == 6  # ceil(11 × 0.5)


def test_dashboard_rollup_matches_the_selectors(bangkok, history):
    """The dashboard's single-scan rollup gives exactly the numbers of the reference selectors."""
    from retention_app.metrics.dashboard import dashboard_data

    basic_history(history)
    history.order("A", "2026-03-31 23:30", "70.00")  # timezone edge
    history.order("F", "2026-04-01 00:30", "20.00")
    history.order("G", "2025-01-10 10:00", "999.00")  # lapsed big spender: at risk
    history.order("H", "2026-02-01 00:30", "5.00", cancelled=True)
    history.order("B", "2025-12-01 10:00", "300.00", test=True)
    today = D("2026-04-10")
    data = dashboard_data(
        shop=bangkok,
        start=D("2026-03-01"),
        end=D("2026-04-01"),
        window_days=30,
        vip_share_percent=30,
        cohort_months=24,
        series_months=4,
        today=today,
    )
    ref = report(bangkok)
    for attr in (
        "S",
        "E",
        "N",
        "churned",
        "retention_rate",
        "churn_rate",
        "repeat_purchase_rate",
        "orders_in_period",
        "revenue_in_period",
        "average_order_value",
        "customer_lifetime_value",
    ):
        assert getattr(data.report, attr) == getattr(ref, attr), attr
    assert [(c.cohort, c.size, c.retention) for c in data.cohorts] == [
        (c.cohort, c.size, c.retention) for c in cohort_table(shop=bangkok, last_months=24)
    ]
    days = [D("2025-12-01"), D("2026-01-01"), D("2026-02-01"), D("2026-03-01"), D("2026-04-01")]
    ref_series = retention_series(shop=bangkok, days=days, window_days=30)
    assert [(r["S"], r["E"], r["N"], r["churned"]) for r in data.series] == [
        (r["S"], r["E"], r["N"], r["churned"]) for r in ref_series
    ]
    as_of = history.at("2026-04-01 00:00")
    assert [c.pk for c in data.at_risk] == [
        c.pk for c in customers_at_risk(shop=bangkok, as_of=as_of, window_days=30, limit=10)
    ]
    assert data.at_risk[0].first_name == "G" and data.at_risk[0].spend == Decimal("999.00")
    assert [c.pk for c in data.vips] == [
        c.pk for c in vip_customers(shop=bangkok, share_percent=30, as_of=as_of)
    ]
    assert len(data.vips) == 2  # ceil(6 customers (A B C D E G) with orders before as_of × 30 %)


def test_dashboard_lists_keep_the_selectors_order_on_ties(bangkok, history):
    """The dashboard returns every result of one statement (UNION ALL, whose row order is not guaranteed)
    and orders the customer lists again: ties on spend fall back to the last order, then the id."""
    from retention_app.metrics.dashboard import dashboard_data

    for name, day in [("P", "2025-06-03"), ("Q", "2025-06-01"), ("R", "2025-06-02"), ("S", "2025-06-01")]:
        history.order(name, f"{day} 10:00", "100.00")  # equal spend, all lapsed by 2026-03
    history.order("T", "2026-03-10 10:00", "100.00")  # active: not at risk, still a VIP candidate
    data = dashboard_data(
        shop=bangkok,
        start=D("2026-03-01"),
        end=D("2026-04-01"),
        window_days=30,
        vip_share_percent=100,
        series_months=2,
        today=D("2026-04-10"),
    )
    as_of = history.at("2026-04-01 00:00")
    expected_risk = [c.pk for c in customers_at_risk(shop=bangkok, as_of=as_of, window_days=30, limit=10)]
    assert [c.pk for c in data.at_risk] == expected_risk
    assert [c.first_name for c in data.at_risk] == ["P", "R", "Q", "S"]  # last order desc, then id
    assert [c.pk for c in data.vips] == [
        c.pk for c in vip_customers(shop=bangkok, share_percent=100, as_of=as_of)
    ]
    assert [c.first_name for c in data.vips] == ["P", "Q", "R", "S", "T"]  # equal spend: by id
    assert all(c.order_count == 1 and c.spend == Decimal("100.00") for c in data.vips)
