"""Defects a probe with real-world payloads found (round 6), each as a responder or the platform
engineer who set up the sender sees it: Datadog variables left unfilled, a JSON integer too long
for Python, Grafana's test notifications, Grafana's legacy rule tags, and timeline entries that
leave out what an action was about."""

from __future__ import annotations

import pytest

from bot.alerts.sources import parse
from bot.config import Policy
from bot.db import Database
from tests.alerts.conftest import NOW, load
from tests.alerts.test_probe_round5 import deliver, notices, texts

# -- 1. Datadog variables Datadog left unfilled ------------------------------------------------

UNFILLED = "datadog/probe-unfilled-variables-monitor-"


@pytest.mark.parametrize("aggregate", ["$AGGREG_KEY", None])
def test_unfilled_datadog_keys_never_merge_two_monitors_into_one_incident(
    db: Database, policy: Policy, aggregate: str | None
) -> None:
    """Monitor 111 (CPU) and monitor 222 (disk) both come with ``"alert_cycle_key":
    "$ALERT_CYCLE_KEY"`` as Datadog sends a variable it has no value for (and the aggregate
    unfilled too, or absent): each opens its own incident, and 111 recovering asks to mitigate
    its own incident only, while the disk is still full. Before, the disk alert attached to
    the CPU incident and 111's recovery asked "All alerts resolved: mitigate?" for both."""
    bodies = [load(f"{UNFILLED}{name}") for name in ("111-triggered", "222-triggered")]
    recovered = load(f"{UNFILLED}111-recovered")
    for body in (*bodies, recovered):
        if aggregate is None:
            del body["aggregate"]
    cpu, disk = (deliver(db, policy, "datadog", body, i) for i, body in enumerate(bodies))
    assert (cpu.incident_ref, cpu.declared) == ("INC-1", True)
    assert (disk.incident_ref, disk.declared) == ("INC-2", True)
    back = deliver(db, policy, "datadog", recovered, 2)
    assert (back.incident_ref, back.firing) == ("INC-1", 0)
    assert [n.incident_id for n in notices(db, "all_resolved")] == [1]
    assert texts(db, 2)[-1] == "Alert firing: Disk full on db (1 of 1 firing in this group)"


def test_a_field_that_is_only_an_unfilled_variable_counts_as_absent() -> None:
    """Every field: the scope (``$ALERT_SCOPE`` in the field, the title and the monitor link),
    the monitor, the priority, the date. The monitor comes from the body's link, and no
    ``$VARIABLE`` is shown or kept as a label."""
    parsed = parse("datadog", load(f"{UNFILLED}333-scope-and-keys"), now=NOW)
    [alert] = parsed.alerts
    assert alert.labels["monitor_id"] == "333"
    assert "scope" not in alert.labels
    assert alert.severity is None and alert.event_at is None
    assert not any("$" in value for value in alert.labels.values())
    other = parse("datadog", {**load(f"{UNFILLED}333-scope-and-keys"), "alert_id": "444"}, now=NOW)
    assert other.group_key != parsed.group_key


def test_a_dollar_inside_a_value_is_kept() -> None:
    body = {"title": "$5 checkout failing", "body": "x", "alert_scope": "env:$PROD-eu"}
    [alert] = parse("datadog", body, now=NOW).alerts
    assert (alert.title, alert.labels["scope"]) == ("$5 checkout failing", "env:$PROD-eu")
