"""Routing rules and the metadata escalation."""

import pytest

from service.routing import Rules, RulesError


@pytest.fixture(scope="module")
def rules():
    return Rules.load()


@pytest.mark.parametrize("intent,level,queue,priority,minutes", [
    ("complaint", 3, "escalation", "P1", 15),
    ("complaint", 2, "support", "P2", 60),
    ("complaint", 1, "support", "P3", 240),
    ("question", 0, "support", "P3", 240),
    ("sales_lead", 2, "sales", "P2", 60),
    ("sales_lead", 1, "sales", "P3", 240),
    ("praise", 0, "community", "P4", 1440),
    ("other", 0, None, "P5", None),
    ("refund_request", 1, "triage", "P3", 240),
])
def test_default_routes(rules, intent, level, queue, priority, minutes):
    r = rules.route(intent, level)
    assert (r.queue, r.priority, r.respond_within_minutes) == (queue, priority, minutes)


def test_reach_and_engagement_raise_urgency_with_reasons(rules):
    assert rules.escalate("complaint", 1, 500, False, 2) == (1, [])
    level, reasons = rules.escalate("complaint", 1, 12_000, False, 30)
    assert level == 3
    assert reasons == ["author reach: 12k followers", "public visibility: 30 shares and replies"]
    assert rules.escalate("complaint", 1, None, True, None) == (2, ["verified author"])
    assert rules.escalate("praise", 0, 1_000_000, True, 500) == (0, [])
    assert rules.escalate("complaint", 3, 1_000_000, False, None) == (3, ["author reach: 1M followers"])
    assert rules.escalate("complaint", 1, 500, False, 25) == (2, ["public visibility: 25 shares and replies"])


def test_broken_rules_name_the_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("routes:\n  - {intents: [complaint], queue: support, priority: P1, respond_within_minutes: 5}\n"
                    "  - {intents: [other], queue: null, priority: P9, respond_within_minutes: null}\n")
    with pytest.raises(RulesError, match=r"line 3: routes.1.priority"):
        Rules.load(path)
    path.write_text("routes: [\n")
    with pytest.raises(RulesError, match="not valid YAML"):
        Rules.load(path)


def test_every_label_needs_a_route(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("routes:\n  - {intents: [complaint], queue: support, priority: P1, respond_within_minutes: 5}\n")
    with pytest.raises(RulesError, match="no routing rule matches intent 'praise'"):
        Rules.load(path).check_labels(["complaint", "praise"])
