"""Parsing runbooks as teams write them: checklists, prose with headings, and no structure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.runbooks.parser import (
    MAX_FILE_BYTES,
    RunbookFileError,
    heading_kind,
    load_runbook_file,
    parse_runbook,
)

CHECKLIST = """\
# Roll back a bad deploy

Use this when a deploy broke production.

- [ ] Confirm the deploy is the cause
  - [ ] compare the deploy time with the graphs
  - [ ] check the error logs
- [x] Freeze deploys
- [ ] Roll back

  ```sh
  kubectl rollout undo deployment/api
  ```
"""

PROSE = """\
---
title: Pod crash looping
alerts: [KubePodCrashLooping]
---

# KubePodCrashLooping

## Meaning

The pod restarts over and over.

## Impact

Service degradation.

## Diagnosis

Check the events.

```sh
kubectl describe pod $POD
```

## Mitigation

Fix the configuration and redeploy.
"""


def titles(text: str) -> list[str]:
    return [s.title for s in parse_runbook(text, runbook_id="rb").steps]


def test_checklist_items_are_steps_and_nested_items_stay_inside_their_parent() -> None:
    runbook = parse_runbook(CHECKLIST, runbook_id="deploy/rollback")

    assert [s.title for s in runbook.steps] == [
        "Confirm the deploy is the cause",
        "Freeze deploys",
        "Roll back",
    ]
    first = runbook.steps[0]
    assert "- [ ] compare the deploy time with the graphs" in first.markdown
    assert "- [ ] check the error logs" in first.markdown
    assert not first.markdown.startswith("- [ ]")
    assert "kubectl rollout undo deployment/api" in runbook.steps[2].markdown
    assert [s.line for s in runbook.steps] == [5, 8, 9]
    assert runbook.title == "Roll back a bad deploy"
    assert [c.title for c in runbook.context] == ["Overview"]
    assert runbook.description == "Use this when a deploy broke production."


def test_numbered_list_under_an_actionable_heading_gives_one_step_per_item() -> None:
    text = "# Failover\n\n## Impact\n\n1. users see errors\n\n## Steps\n\n1. Drain\n2. Promote\n"
    runbook = parse_runbook(text, runbook_id="failover")

    assert [s.title for s in runbook.steps] == ["Drain", "Promote"]
    assert [c.title for c in runbook.context] == ["Impact"]
    assert "users see errors" in runbook.context[0].markdown


def test_prose_runbook_has_context_sections_and_actionable_sections_as_steps() -> None:
    runbook = parse_runbook(PROSE, runbook_id="kubernetes/KubePodCrashLooping")

    assert runbook.title == "Pod crash looping"
    assert runbook.alerts == ("KubePodCrashLooping",)
    assert [c.title for c in runbook.context] == ["Meaning", "Impact"]
    assert [s.title for s in runbook.steps] == ["Diagnosis", "Mitigation"]
    assert runbook.steps[0].markdown.startswith("Check the events.")
    assert "```sh\nkubectl describe pod $POD\n```" in runbook.steps[0].markdown
    assert runbook.steps[0].line == 16  # the heading's line in the file, front matter included
    assert runbook.description == "The pod restarts over and over."


def test_snapshot_has_exactly_the_shape_other_modules_read() -> None:
    snapshot = parse_runbook(PROSE, runbook_id="x").snapshot()

    assert set(snapshot) == {"title", "description", "context", "steps"}
    assert all(set(c) == {"title", "markdown"} for c in snapshot["context"])
    # "section" only where the runbook has more than one (readers take it as optional)
    assert all(set(s) - {"section"} == {"title", "markdown", "line"} for s in snapshot["steps"])
    assert all(isinstance(s["line"], int) for s in snapshot["steps"])


@pytest.mark.parametrize(
    "heading",
    [
        "Mitigation",
        "MITIGATION STEPS",
        "Diagnosis",
        "Remediation",
        "Resolution",
        "Steps",
        "Procedure",
        "Recovery",
        "Rollback",
        "Rolling back",
        "Troubleshooting",
        "Investigation",
        "How to fix",
        "What to do",
        "Next steps",
        "Actions",
        "Verify",
        "Verification",
        "Restart the ingress pods",
        "Step 3: drain the node",
        "2. Promote the replica",
        "Diagnosis and background",
    ],
)
def test_actionable_headings(heading: str) -> None:
    assert heading_kind(heading) == "action"


@pytest.mark.parametrize(
    "heading",
    [
        "Meaning",
        "Impact",
        "Summary",
        "Overview",
        "Background",
        "Description",
        "Links",
        "See also",
        "References",
        "Related runbooks",
        "Related runbooks for mitigation",
    ],
)
def test_context_headings(heading: str) -> None:
    assert heading_kind(heading) == "context"


def test_unknown_headings_are_neither() -> None:
    assert heading_kind("Postgres") is None


def test_sub_headings_under_an_actionable_section_split_steps() -> None:
    text = """\
# Runbook

## Mitigation

Two ways to get space back.

### Capacity planning

Plan a bigger cluster.

### Defrag

Run a defrag on every member.

### References

- https://etcd.io
"""
    runbook = parse_runbook(text, runbook_id="etcd")

    assert [s.title for s in runbook.steps] == ["Capacity planning", "Defrag"]
    # the section's introduction is read with the first sub-section, not clicked as a step
    assert runbook.steps[0].markdown.startswith("Two ways to get space back.")
    assert [c.title for c in runbook.context] == ["References"]


def test_each_command_in_a_long_section_is_a_step_with_the_text_that_explains_it() -> None:
    text = """\
# Etcd

## Diagnosis

Validate that the etcdctl command is available:

```shell
etcdctl version
```

Fetch the DB size of the endpoints:

```shell
etcdctl endpoint status -w table
```

Compare it with the quota.
"""
    runbook = parse_runbook(text, runbook_id="etcd")

    assert [s.title for s in runbook.steps] == [
        "Validate that the etcdctl command is available",
        "Fetch the DB size of the endpoints",
    ]
    assert "etcdctl version" in runbook.steps[0].markdown
    assert "etcdctl endpoint status" not in runbook.steps[0].markdown
    assert runbook.steps[1].markdown.endswith("Compare it with the quota.")
    assert [s.line for s in runbook.steps] == [5, 11]


def test_text_between_two_commands_explains_the_first_and_introduces_the_second() -> None:
    text = """\
## Diagnosis

Describe the group:

```sh
kafka-consumer-groups.sh --describe --group orders
```

Lag on every partition means the consumers are down.

Check the consumers:

```sh
kubectl get pods -l app=orders
```
"""
    first, second = parse_runbook(text, runbook_id="lag").steps

    assert first.markdown.endswith("Lag on every partition means the consumers are down.")
    assert second.markdown.startswith("Check the consumers:")
    assert (first.title, second.title) == ("Describe the group", "Check the consumers")


def test_a_runbook_without_structure_is_one_step_with_its_body() -> None:
    text = "Restart the worker and watch the queue drain. Page the DBA if it does not.\n"
    runbook = parse_runbook(text, runbook_id="ops/restart-worker")

    assert len(runbook.steps) == 1
    assert runbook.steps[0].markdown == text.strip()
    assert runbook.title == "Restart worker"


def test_sections_the_words_do_not_classify_become_steps_when_nothing_else_does() -> None:
    text = "# Database\n\n## Primary\n\nPromote the replica.\n\n## Clients\n\nRestart them.\n"

    assert titles(text) == ["Primary", "Clients"]


def test_only_context_sections_still_give_a_walkable_runbook() -> None:
    text = "# Alert\n\n## Meaning\n\nSomething is off.\n\n## Impact\n\nNone.\n"
    runbook = parse_runbook(text, runbook_id="alert")

    assert len(runbook.steps) == 1
    assert "Something is off." in runbook.steps[0].markdown
    assert "None." in runbook.steps[0].markdown


def test_title_comes_from_front_matter_then_first_heading_then_file_name() -> None:
    assert parse_runbook("---\ntitle: From FM\n---\n# Heading\n- [ ] a\n").title == "From FM"
    assert parse_runbook("# Heading\n- [ ] a\n").title == "Heading"
    assert parse_runbook("- [ ] a\n", runbook_id="disk-full").title == "Disk full"
    assert parse_runbook("- [ ] a\n", runbook_id="k8s/KubeNodeNotReady").title == "KubeNodeNotReady"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("# Restart\n1. a\n2. b\n", "Restart"),
        ("# Rollback\n\n- [ ] a\n", "Rollback"),
        ("# Mitigation\n\nRun `x`\n", "Mitigation"),
        # a level-2 section word alone names a part of the file, not the file: two such
        # files would both be "Steps" in every list
        ("## Steps\n\n- [ ] a\n", "Db failover"),
        ("# Restart\n\nStop the traffic first.\n\n## Steps\n\n1. a\n", "Restart"),
        # a level-2 section before the level-1 title is not the title
        ("## Owner\n\npayments\n\n# Payments restart\n\n## Steps\n\n1. a\n", "Payments restart"),
        # the first of a series of top-level sections does not name the document
        ("# Meaning\n\nx\n\n# Mitigation\n\n- [ ] a\n", "Db failover"),
    ],
    ids=[
        "only-heading",
        "checklist",
        "prose",
        "level-2-alone",
        "with-sections",
        "section-before-level-1",
        "series-of-sections",
    ],
)
def test_the_first_heading_is_the_title_even_when_it_is_a_section_word(
    text: str, title: str
) -> None:
    assert parse_runbook(text, runbook_id="ops/db-failover").title == title


def test_a_section_word_heading_as_title_keeps_the_runbook_walkable() -> None:
    restart = parse_runbook("# Restart\n\nStop the traffic first.\n\n## Steps\n\n1. a\n2. b\n")
    assert [s.title for s in restart.steps] == ["a", "b"]
    assert [(c.title, c.markdown) for c in restart.context] == [
        ("Overview", "Stop the traffic first.")
    ]

    mitigation = parse_runbook("# Mitigation\n\nRun `x`\n", runbook_id="x")
    assert [(s.title, s.markdown) for s in mitigation.steps] == [("Mitigation", "Run `x`")]


def test_with_a_front_matter_title_a_section_word_heading_stays_a_section() -> None:
    runbook = parse_runbook("---\ntitle: Drain a node\n---\n# Mitigation\n\nRun `drain`.\n")

    assert runbook.title == "Drain a node"
    assert [(s.title, s.markdown) for s in runbook.steps] == [("Mitigation", "Run `drain`.")]


def test_front_matter_fields_aliases_and_unknown_keys() -> None:
    text = """\
---
title: Disk full
description: Free space safely.
service: payments
severities: SEV1, SEV2
alerts:
  - NodeFilesystemAlmostOutOfSpace
tags: [disk]
owner: "@platform"
weight: 20
bookHidden: true
---
- [ ] Check df
"""
    runbook = parse_runbook(text, runbook_id="disk")

    assert runbook.services == ("payments",)
    assert runbook.severities == ("SEV1", "SEV2")
    assert runbook.alerts == ("NodeFilesystemAlmostOutOfSpace",)
    assert runbook.tags == ("disk",)
    assert runbook.owner == "@platform"
    assert runbook.description == "Free space safely."
    assert set(runbook.unknown_keys) == {"weight", "bookHidden"}
    assert runbook.problems == ()
    assert runbook.steps[0].line == 13


def test_invalid_yaml_front_matter_is_an_error_and_the_body_still_loads() -> None:
    text = "---\ntitle: [unclosed\nservices: a\n---\n# Disk\n\n- [ ] Check df\n"
    runbook = parse_runbook(text, runbook_id="disk")

    assert [p.level for p in runbook.problems] == ["error"]
    assert "invalid YAML front matter" in runbook.problems[0].message
    assert runbook.problems[0].line in (2, 3, 4)
    assert runbook.title == "Disk"
    assert [s.title for s in runbook.steps] == ["Check df"]
    assert runbook.steps[0].line == 7


def test_front_matter_that_is_not_a_mapping_or_has_wrong_types_is_reported() -> None:
    listed = parse_runbook("---\n- a\n- b\n---\n- [ ] x\n")
    assert "key: value pairs" in listed.problems[0].message

    typed = parse_runbook("---\ntitle: [a, b]\nservices: {x: 1}\n---\n- [ ] x\n")
    messages = [(p.line, p.message) for p in typed.problems]
    assert (2, "front matter 'title' must be text, not a list or map") in messages
    assert any(line == 3 and "'services' must be a name or a list" in m for line, m in messages)


def test_a_yaml_date_that_does_not_exist_does_not_break_loading() -> None:
    runbook = parse_runbook("---\nupdated: 2024-13-45\n---\n- [ ] x\n")

    assert runbook.problems[0].level == "error"
    assert [s.title for s in runbook.steps] == ["x"]


def test_toml_front_matter_is_read() -> None:
    runbook = parse_runbook('+++\ntitle = "From TOML"\nalerts = ["A"]\n+++\n- [ ] x\n')

    assert (runbook.title, runbook.alerts, runbook.problems) == ("From TOML", ("A",), ())


def test_unclosed_front_matter_is_a_warning_and_shown_as_text() -> None:
    runbook = parse_runbook("---\ntitle: x\n\n- [ ] step\n")

    assert [p.level for p in runbook.problems] == ["warning"]
    assert [s.title for s in runbook.steps] == ["step"]


def test_a_hugo_section_file_is_empty() -> None:
    runbook = parse_runbook("---\ntitle: node\nbookCollapseSection: true\n---\n")

    assert runbook.empty
    assert runbook.steps == ()


def test_unterminated_code_fence_is_a_problem_but_the_code_stays_in_the_step() -> None:
    text = "# X\n\n## Mitigation\n\n```sh\nkubectl get pods\n\n## Verify\n"
    runbook = parse_runbook(text, runbook_id="x")

    assert [(p.line, p.level) for p in runbook.problems] == [(5, "error")]
    assert "never closed" in runbook.problems[0].message
    assert "kubectl get pods" in runbook.steps[0].markdown


def test_a_closed_fence_inside_a_blockquote_is_not_reported() -> None:
    assert parse_runbook("> ```\n> code\n> ```\n").problems == ()


def test_steps_carry_the_reference_link_definitions_they_use() -> None:
    text = "# X\n\n## Mitigation\n\nSee [the docs][docs] and [missing][nope].\n\n[docs]: https://d.io\n"
    runbook = parse_runbook(text, runbook_id="x")

    assert "[docs]: https://d.io" in runbook.steps[0].markdown
    assert [(p.level, p.line) for p in runbook.problems] == [("warning", 5)]
    assert "[missing][nope] has no definition" in runbook.problems[0].message


def test_raw_html_details_is_kept_in_the_context_section() -> None:
    text = """\
# X

## Meaning

Short.

<details>
<summary>Full context</summary>

Long explanation.

</details>

## Mitigation

Do it.
"""
    runbook = parse_runbook(text, runbook_id="x")

    assert "<summary>Full context</summary>" in runbook.context[0].markdown
    assert "Long explanation." in runbook.context[0].markdown
    assert [s.title for s in runbook.steps] == ["Mitigation"]


def test_windows_line_endings_give_the_same_steps_and_lines() -> None:
    unix = parse_runbook(PROSE, runbook_id="x")
    windows = parse_runbook(PROSE.replace("\n", "\r\n"), runbook_id="x")

    assert windows.steps == unix.steps


def test_links_are_collected_with_their_lines() -> None:
    runbook = parse_runbook("# X\n\nSee [a](other.md)\nand ![img](pic.png).\n")

    assert [(link.line, link.target, link.image) for link in runbook.links] == [
        (3, "other.md", False),
        (4, "pic.png", True),
    ]


def test_files_that_are_not_runbooks_are_refused_with_a_reason(tmp_path: Path) -> None:
    binary = tmp_path / "logo.md"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    huge = tmp_path / "huge.md"
    huge.write_text("x" * (MAX_FILE_BYTES + 1))
    latin = tmp_path / "latin.md"
    latin.write_bytes("caf\xe9".encode("latin-1"))

    for path, reason in ((binary, "binary"), (huge, "over 1 MB"), (latin, "not UTF-8")):
        with pytest.raises(RunbookFileError, match=reason):
            load_runbook_file(path)


STEP_PARAGRAPHS = """\
# Payments API restart

Created by Jo Doe, last modified on Mar 01, 2024

**Step 1: Check the pods**

```
kubectl -n payments get pods
```

**Step 2: Restart the deployment**

```
kubectl -n payments rollout restart deploy/payments-api
```

**Step 3: Verify**

Check the Grafana dashboard *Payments Overview*.
"""


def test_step_n_paragraphs_are_steps_whether_or_not_they_carry_a_command() -> None:
    runbook = parse_runbook(STEP_PARAGRAPHS, runbook_id="payments-restart")

    assert [s.title for s in runbook.steps] == [
        "Check the pods",
        "Restart the deployment",
        "Verify",
    ]
    assert runbook.steps[1].markdown == (
        "```\nkubectl -n payments rollout restart deploy/payments-api\n```"
    )
    assert runbook.steps[2].markdown == "Check the Grafana dashboard *Payments Overview*."
    assert [s.line for s in runbook.steps] == [5, 11, 17]
    assert [c.markdown for c in runbook.context] == [
        "Created by Jo Doe, last modified on Mar 01, 2024"
    ]


@pytest.mark.parametrize(
    "procedure",
    [
        "**Step 1:** Drain the node.\n\n**Step 2:** Promote the replica.\n\n**Step 3:** Verify.\n",
        "**1. Drain the node.**\n\n**2. Promote the replica.**\n\n**3. Verify.**\n",
        "**1.** Drain the node.\n\n**2.** Promote the replica.\n\n**3.** Verify.\n",
        "Step 1: Drain the node.\n\nStep 2 - Promote the replica.\n\nStep 3: Verify.\n",
    ],
    ids=["bold-step-label", "bold-title", "bold-number", "plain-step-label"],
)
def test_every_style_of_numbered_step_paragraph_is_a_step(procedure: str) -> None:
    text = f"# Failover\n\n## Procedure\n\nRun these in order.\n\n{procedure}"
    runbook = parse_runbook(text, runbook_id="failover")

    assert [s.title for s in runbook.steps] == [
        "Drain the node.",
        "Promote the replica.",
        "Verify.",
    ]
    # the numbering is the bot's; the section's introduction is read with the first step
    assert runbook.steps[0].markdown.startswith("Run these in order.")
    assert not any(re.search(r"Step \d|\b\d\.", s.markdown) for s in runbook.steps)


def test_bold_dates_and_a_lone_numbered_paragraph_are_not_a_procedure() -> None:
    dates = "# X\n\n## Mitigation\n\n**2024-03-01:** restarted.\n\n**2024-03-02:** scaled.\n"
    assert [s.title for s in parse_runbook(dates, runbook_id="x").steps] == ["Mitigation"]

    lone = "# X\n\n## Mitigation\n\n**1.** Restart the pods.\n\nThen wait.\n"
    assert [s.title for s in parse_runbook(lone, runbook_id="x").steps] == ["Mitigation"]
