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


def test_expected_output_stays_in_the_step_of_its_command() -> None:
    text = (
        "# Pods\n\n## Mitigation\n\nList the pods:\n\n```\nkubectl get pods\n```\n\n"
        "The output should look like this:\n\n```\nNAME READY\nweb  1/1\n```\n\n"
        "Restart them:\n\n```sh\nkubectl rollout restart deploy/web\n```\n\n"
        "```text\ndeployment.apps/web restarted\n```\n\n"
        "Check the health endpoint:\n\n```sh\ncurl localhost/health\n```\n\n"
        'which returns:\n\n```json\n{"ok": true}\n```\n'
    )
    steps = parse_runbook(text).steps
    assert [s.title for s in steps] == [
        "List the pods",
        "Restart them",
        "Check the health endpoint",
    ]
    assert steps[0].markdown.endswith(
        "The output should look like this:\n\n```\nNAME READY\nweb  1/1\n```"
    )
    assert steps[1].markdown.endswith("```text\ndeployment.apps/web restarted\n```")
    assert steps[2].markdown.endswith('which returns:\n\n```json\n{"ok": true}\n```')


def test_expected_output_after_a_numbered_item_stays_in_that_item() -> None:
    text = (
        "# Pods\n\n## Mitigation\n\n1. Check the dashboard\n2. Run:\n\n"
        "```\nkubectl get pods\n```\n\nExample output:\n\n```\nNAME READY\n```\n"
    )
    steps = parse_runbook(text).steps
    assert [s.title for s in steps] == ["Check the dashboard", "Run"]
    assert steps[1].markdown.endswith("Example output:\n\n```\nNAME READY\n```")


def test_a_second_command_is_still_a_step_of_its_own() -> None:
    text = (
        "# Pods\n\n## Mitigation\n\nList the pods:\n\n```\nkubectl get pods\n```\n\n"
        "```console\n$ kubectl rollout restart deploy/web\n```\n"
    )
    assert len(parse_runbook(text).steps) == 2
