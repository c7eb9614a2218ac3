"""Layouts found in real public runbooks (GitHub, GitLab): what a responder sees must be what
the markdown viewer shows the author, one instruction per step with its command intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.runbooks.lint import lint_paths
from bot.runbooks.parser import parse_runbook
from bot.slack.runbook_messages import markdown_to_mrkdwn


def titles(text: str) -> list[str]:
    return [s.title for s in parse_runbook(text, runbook_id="rb").steps]


def steps(text: str) -> list[tuple[str, str]]:
    """(title, what Slack shows) for each step."""
    runbook = parse_runbook(text, runbook_id="rb")
    return [(s.title, markdown_to_mrkdwn(s.markdown)) for s in runbook.steps]


# --------------------------------------------------------------------------------------------
# tabs (GitLab's unhealthy_patroni_node_handling.md)


def test_a_tab_indented_fence_in_a_list_item_is_one_intact_code_block() -> None:
    text = (
        "# Replica lag\n\n## Mitigation\n\n"
        "1. Stop the patroni service on the unhealthy node\n\n"
        "\t```\n\tsudo systemctl stop patroni\n\tsudo systemctl disable patroni.service\n\t```\n\n"
        "1. Check that patroni service is stopped\n\n"
        "   ```\n   sudo gitlab-patronictl list\n   ```\n"
    )

    assert steps(text) == [
        (
            "Stop the patroni service on the unhealthy node",
            "Stop the patroni service on the unhealthy node\n"
            "```\nsudo systemctl stop patroni\nsudo systemctl disable patroni.service\n```",
        ),
        (
            "Check that patroni service is stopped",
            "Check that patroni service is stopped\n```\nsudo gitlab-patronictl list\n```",
        ),
    ]


def test_tab_indented_links_in_a_list_item_stay_a_list_of_links() -> None:
    text = (
        "## Steps\n\n1. Confirm the instances were deleted:\n"
        "\t- https://console.cloud.google.com/compute/instances\n"
        "\t- https://console.cloud.google.com/compute/disks\n"
    )

    [(_, shown)] = steps(text)
    assert "```" not in shown
    assert "• https://console.cloud.google.com/compute/instances" in shown
    assert "• https://console.cloud.google.com/compute/disks" in shown


def test_a_tab_that_reaches_past_the_item_content_keeps_the_code_indented() -> None:
    # "1. " is 3 columns and two tabs 8: 5 columns under the item, an indented code block
    # whose code starts with one space, as CommonMark has it
    text = "## Steps\n\n1. Run\n\n\t\tindented code\n"

    [(_, shown)] = steps(text)
    assert shown == "Run\n```\n indented code\n```"


# --------------------------------------------------------------------------------------------
# a command not indented under its numbered item


UNINDENTED = """\
# Payments API rollback

## Rollback

1. Find the previous revision:
```sh
kubectl -n payments rollout history deploy/payments-api
```
2. Roll back to it:
```sh
kubectl -n payments rollout undo deploy/payments-api --to-revision=<N>
```
3. Watch the rollout finish:
```sh
kubectl -n payments rollout status deploy/payments-api
```
4. Post an update in the incident channel.

Then check the dashboard:

```sh
open https://grafana.example.com/d/payments
```
"""


def test_a_command_at_column_0_after_a_numbered_item_is_that_items_command() -> None:
    assert steps(UNINDENTED) == [
        (
            "Find the previous revision",
            "Find the previous revision:\n"
            "```\nkubectl -n payments rollout history deploy/payments-api\n```",
        ),
        (
            "Roll back to it",
            "Roll back to it:\n"
            "```\nkubectl -n payments rollout undo deploy/payments-api"
            " --to-revision=&lt;N&gt;\n```",
        ),
        (
            "Watch the rollout finish",
            "Watch the rollout finish:\n"
            "```\nkubectl -n payments rollout status deploy/payments-api\n```",
        ),
        ("Post an update in the incident channel.", "Post an update in the incident channel."),
        # text that is not indented and introduces a command is still a step of its own
        (
            "Then check the dashboard",
            "Then check the dashboard:\n```\nopen https://grafana.example.com/d/payments\n```",
        ),
    ]


GITLAB_NUMBERING = """\
## Take the replica out of load balancing

1. Add a tags section to patroni.yml:

  ```
  tags:
    nofailover: true
  ```

1. Test the efficacy of that reload:

  ```
  dig @127.0.0.1 -p 8600 db-replica.service.consul. SRV
  ```

  If the name is absent, then the reload worked.

1. Wait until all client connections are drained:

  ```
  pgb-console -c 'SHOW CLIENTS;'
  ```

  It can take a few minutes. Check the remaining ones:

  ```
  gitlab-psql -qc "select count(*) from pg_stat_activity"
  ```

You can see an example in this issue.
"""


def test_text_indented_too_little_for_its_item_still_belongs_to_it() -> None:
    shown = steps(GITLAB_NUMBERING)

    assert [title for title, _ in shown] == [
        "Add a tags section to patroni.yml",
        "Test the efficacy of that reload",
        "Wait until all client connections are drained",
    ]
    assert shown[0][1] == "Add a tags section to patroni.yml:\n```\ntags:\n  nofailover: true\n```"
    assert shown[1][1] == (
        "Test the efficacy of that reload:\n"
        "```\ndig @127.0.0.1 -p 8600 db-replica.service.consul. SRV\n```\n"
        "If the name is absent, then the reload worked."
    )
    assert "It can take a few minutes." in shown[2][1]
    assert "select count(*) from pg_stat_activity" in shown[2][1]
    assert shown[2][1].endswith("You can see an example in this issue.")


def test_a_new_procedure_after_a_command_is_not_merged_into_the_previous_one() -> None:
    text = (
        "## Steps\n\n1. Drain\n2. Promote\n\nPhase two:\n```sh\nswitch\n```\n\n"
        "1. Verify\n2. Close\n"
    )

    assert [title for title, _ in steps(text)] == [
        "Drain",
        "Promote",
        "Phase two",
        "Verify",
        "Close",
    ]


# --------------------------------------------------------------------------------------------
# a title and sections all at level 1 (Bisque-IO/bop's runbook_template.md)


H1_SECTIONS = """\
# Redis Runbook

# Summary

Redis primary is down; writes fail.

# Mitigation

```sh
redis-cli -p 26379 sentinel failover mymaster
```
"""


def test_a_level_1_title_before_level_1_sections_is_the_title_not_an_empty_step(
    tmp_path: Path,
) -> None:
    runbook = parse_runbook(H1_SECTIONS, runbook_id="redis")

    assert runbook.title == "Redis Runbook"
    assert [s.title for s in runbook.steps] == ["Mitigation"]
    assert [c.title for c in runbook.context] == ["Summary"]
    assert runbook.description == "Redis primary is down; writes fail."
    (tmp_path / "redis.md").write_text(H1_SECTIONS, encoding="utf-8")
    assert lint_paths([tmp_path]).messages == []


def test_a_first_level_1_heading_with_text_under_it_stays_a_step() -> None:
    text = "# Check the disk\n\nRun `df -h`.\n\n# Restart the pod\n\nDelete it.\n"
    runbook = parse_runbook(text, runbook_id="disk")

    assert [s.title for s in runbook.steps] == ["Check the disk", "Restart the pod"]


# --------------------------------------------------------------------------------------------
# step titles


def test_a_title_is_the_whole_first_sentence_despite_abbreviations_and_brackets() -> None:
    text = """\
## Mitigation

- [ ] Restart the worker, e.g. `systemctl restart worker`, and watch memory. Then page.
- [ ] Check the disk metrics (eg. I/O wait per operation) on the host. Then page.
- [ ] Scale out the deployment to 2x the replicas (approx. 10 pods).
- [ ] Compare p99 vs. P50 latency, i.e. Tail latency. Then decide.
"""

    assert titles(text) == [
        "Restart the worker, e.g. systemctl restart worker, and watch memory.",
        "Check the disk metrics (eg. I/O wait per operation) on the host.",
        "Scale out the deployment to 2x the replicas (approx. 10 pods).",
        "Compare p99 vs. P50 latency, i.e. Tail latency.",
    ]


# --------------------------------------------------------------------------------------------
# tables of contents (GitLab's docs/patroni/alerts/PostgresSplitBrain.md)


@pytest.mark.parametrize(
    "toc",
    [
        "**Table of Contents**\n\n[TOC]",
        "[[_TOC_]]",
        "[[TOC]]",
        "## Table of Contents\n\n- [Overview](#overview)\n- [Mitigation](#mitigation)",
    ],
    ids=["python-markdown", "gitlab", "gitlab-short", "written-out"],
)
def test_a_table_of_contents_is_neither_context_nor_the_description(toc: str) -> None:
    text = f"""\
# PostgresSplitBrain

{toc}

## Overview

- This alert detects a split-brain in a Patroni cluster. More than one node is primary.
- > What factors can contribute?

## Mitigation

Stop the old primary.
"""
    runbook = parse_runbook(text, runbook_id="split-brain")

    assert runbook.description == "This alert detects a split-brain in a Patroni cluster."
    assert [c.title for c in runbook.context] == ["Overview"]
    assert [s.title for s in runbook.steps] == ["Mitigation"]
    assert "TOC" not in runbook.text
