"""Panel-side writes on automation rules that the automations services do not (yet) offer.

Pausing a rule is setting `Rule.enabled` (the model's contract: nothing new is scheduled for a paused rule
and pending messages are cancelled at send time), so no further bookkeeping is needed here.
"""

from __future__ import annotations

from retention_app.automations.models import Rule


def rule_set_enabled(*, rule: Rule, enabled: bool) -> Rule:
    rule.enabled = enabled
    rule.save(update_fields=["enabled", "updated_at"])
    return rule
