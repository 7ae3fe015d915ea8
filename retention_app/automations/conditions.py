"""Rule conditions: the pydantic schema of `Rule.conditions` and their evaluation.

Every condition is optional; a rule whose conditions are all unset matches every trigger. Conditions about
an order (order total, products, collections, first order) look at the triggering order: the order itself
for order rules, the shipped order for shipping updates, the customer's last order for win-back.
Customer figures (order count, total spent) count the customer's orders that are not cancelled and not
test orders, as of evaluation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from retention_app.commerce.models import Customer, Order, Product


class RuleConditions(BaseModel):
    """Schema of `Rule.conditions` (JSON). Unknown keys are refused so a typo never silently matches all."""

    model_config = ConfigDict(extra="forbid")

    # Only the customer's first order (no earlier order by the same customer).
    first_order_only: bool = False
    # The order's total is at least this amount (in the order's currency).
    min_order_total: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    # The order contains at least one of these products (platform ids).
    contains_product_ids: list[str] = Field(default_factory=list, max_length=200)
    # The order contains a product from at least one of these collections (platform ids).
    contains_collection_ids: list[str] = Field(default_factory=list, max_length=200)
    # The customer has at least one of these tags (case-insensitive).
    customer_tags: list[str] = Field(default_factory=list, max_length=100)
    min_order_count: int | None = Field(default=None, ge=0)
    max_order_count: int | None = Field(default=None, ge=0)
    min_total_spent: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    # Only customers who accept email marketing (always enforced for marketing rules).
    accepts_marketing: bool = False

    @field_validator("contains_product_ids", "contains_collection_ids", "customer_tags")
    @classmethod
    def _clean_list(cls, values: list[str]) -> list[str]:
        cleaned = [str(v).strip() for v in values if str(v).strip()]
        if any(len(v) > 255 for v in cleaned):
            raise ValueError("each value must be at most 255 characters")
        return list(dict.fromkeys(cleaned))

    @model_validator(mode="after")
    def _order_count_range(self) -> RuleConditions:
        if (
            self.min_order_count is not None
            and self.max_order_count is not None
            and self.min_order_count > self.max_order_count
        ):
            raise ValueError("min_order_count must not be greater than max_order_count")
        return self

    def to_json(self) -> dict:
        """The canonical JSON stored in Rule.conditions (unset conditions left out)."""
        return self.model_dump(mode="json", exclude_defaults=True)


@dataclass(frozen=True)
class ConditionResult:
    matched: bool
    # Human-readable reason when not matched (stored as a message's cancel reason).
    reason: str = ""


def _countable_orders(customer: Customer):
    return Order.objects.filter(customer=customer, cancelled_at__isnull=True, is_test=False)


def conditions_evaluate(
    *,
    conditions: RuleConditions | dict,
    customer: Customer,
    order: Order | None,
    earlier_order_exists: bool | None = None,
) -> ConditionResult:
    """Whether `customer` (and the triggering `order`, when any) satisfy every condition.

    `earlier_order_exists`: the "first order only" answer when the caller already loaded it (the sender
    loads it for a whole batch in its one query); None: queried here."""
    if isinstance(conditions, dict):
        conditions = RuleConditions.model_validate(conditions)
    c = conditions

    if c.accepts_marketing and not customer.accepts_email_marketing:
        return ConditionResult(False, "The customer does not accept email marketing.")

    if c.customer_tags:
        wanted = {t.lower() for t in c.customer_tags}
        have = {str(t).strip().lower() for t in (customer.tags or [])}
        if not wanted & have:
            return ConditionResult(False, f"The customer has none of the tags {', '.join(c.customer_tags)}.")

    if c.first_order_only:
        if order is None:
            return ConditionResult(False, "No order to check for 'first order only'.")
        earlier = earlier_order_exists
        if earlier is None:
            earlier = (
                Order.objects.filter(customer=customer, is_test=False, placed_at__lt=order.placed_at)
                .exclude(pk=order.pk)
                .exists()
            )
        if earlier:
            return ConditionResult(False, "Not the customer's first order.")

    if c.min_order_total is not None:
        if order is None or order.total_price < c.min_order_total:
            return ConditionResult(False, f"The order total is below {c.min_order_total}.")

    if c.contains_product_ids or c.contains_collection_ids:
        if order is None:
            return ConditionResult(False, "No order to check for products.")
        product_ids = set(
            order.line_items.exclude(product_platform_id="").values_list("product_platform_id", flat=True)
        )
        matched = bool(product_ids & set(c.contains_product_ids))
        if not matched and c.contains_collection_ids:
            wanted_collections = set(c.contains_collection_ids)
            for collection_ids in Product.objects.filter(
                shop_id=order.shop_id, platform_id__in=product_ids
            ).values_list("collection_ids", flat=True):
                if wanted_collections & {str(x) for x in collection_ids or []}:
                    matched = True
                    break
        if not matched:
            return ConditionResult(False, "The order contains none of the chosen products or collections.")

    if c.min_order_count is not None or c.max_order_count is not None:
        count = _countable_orders(customer).count()
        if c.min_order_count is not None and count < c.min_order_count:
            return ConditionResult(False, f"The customer has {count} orders, fewer than {c.min_order_count}.")
        if c.max_order_count is not None and count > c.max_order_count:
            return ConditionResult(False, f"The customer has {count} orders, more than {c.max_order_count}.")

    if c.min_total_spent is not None:
        spent = _countable_orders(customer).aggregate(total=Sum("total_price"))["total"] or Decimal(0)
        if spent < c.min_total_spent:
            return ConditionResult(False, f"The customer has spent {spent}, less than {c.min_total_spent}.")

    return ConditionResult(True)
