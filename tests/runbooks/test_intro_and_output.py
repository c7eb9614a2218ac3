"""An introduction's list of what the runbook covers, and a command's expected output."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

FAILOVER = """# Database failover

This runbook covers:

1. Failing over
2. Restoring

## Failover

1. Promote the replica: `patronictl failover`
2. Check replication
"""


def test_an_intro_list_of_what_the_runbook_covers_is_overview_not_steps() -> None:
    runbook = parse_runbook(FAILOVER)
    assert [s.title for s in runbook.steps] == [
        "Promote the replica: patronictl failover",
        "Check replication",
    ]
    overview = next(c for c in runbook.context if c.title == "Overview")
    assert overview.markdown == "This runbook covers:\n\n1. Failing over\n2. Restoring"


def test_an_intro_list_of_assumptions_or_mirroring_the_headings_is_overview() -> None:
    assumes = FAILOVER.replace("This runbook covers:", "It assumes:").replace(
        "1. Failing over\n2. Restoring", "1. Patroni manages the cluster\n2. Backups are in S3"
    )
    mirrors = (
        FAILOVER.replace("This runbook covers:", "In short:").replace(
            "1. Failing over\n2. Restoring", "1. Failover\n2. Restore"
        )
        + "\n## Restore\n\n1. Restore the backup: `pgbackrest restore`\n"
    )
    for text in (assumes, mirrors):
        titles = [s.title for s in parse_runbook(text).steps]
        assert titles[0] == "Promote the replica: patronictl failover", titles


def test_an_intro_list_of_instructions_or_with_no_sections_stays_steps() -> None:
    only = "# Database failover\n\nThis runbook covers:\n\n1. Failing over\n2. Restoring\n"
    assert [s.title for s in parse_runbook(only).steps] == ["Failing over", "Restoring"]
    orders = FAILOVER.replace("This runbook covers:", "First:").replace(
        "1. Failing over\n2. Restoring", "1. Page the DBA\n2. Freeze deploys"
    )
    titles = [s.title for s in parse_runbook(orders).steps]
    assert titles[:2] == ["Page the DBA", "Freeze deploys"]
