"""Runbooks as teams really write them, from the fourth probe: steps numbered in their headings
stay steps whatever their words, a step's own text is never handed to the step under it, and
what a responder copies (a template, a Makefile recipe) reaches them byte for byte."""

from __future__ import annotations

from pathlib import Path

from bot.runbooks.catalog import RunbookCatalog
from bot.runbooks.lint import lint_paths
from bot.runbooks.parser import parse_runbook
from bot.slack.runbook_messages import markdown_to_mrkdwn, render_runbook_pages

NUMBERED_STEPS = """\
# Data loss suspected in the orders table

## Steps

### Step 1: Stop the writers

```sh
kubectl -n orders scale deploy/orders-writer --replicas=0
```

### Step 2: Impact assessment

Count the rows missing since the last good backup.

### Step 3: Restore from the snapshot

Restore to the last good point in time.

### Step 4: Summary for leadership

Write a three-line summary in #exec-updates.
"""


def test_a_heading_numbered_as_a_step_is_a_step_whatever_its_words() -> None:
    runbook = parse_runbook(NUMBERED_STEPS, runbook_id="orders")
    assert [s.title for s in runbook.steps] == [
        "Stop the writers",
        "Impact assessment",
        "Restore from the snapshot",
        "Summary for leadership",
    ]
    assert runbook.context == ()
    assert "Count the rows" in runbook.steps[1].markdown


NESTED = """\
# Message queue backlog

## Mitigation

### Restart the consumers

Restart every consumer deployment in the `queue` namespace from the Argo CD UI.
Wait until all pods are Ready.

#### If the backlog keeps growing

Pause the producers with the feature flag.

### Purge poison messages

Move messages older than 1h to the dead-letter queue.
"""


def test_a_steps_own_text_stays_with_it_when_a_sub_heading_follows() -> None:
    runbook = parse_runbook(NESTED, runbook_id="queue")
    assert [s.title for s in runbook.steps] == [
        "Restart the consumers",
        "If the backlog keeps growing",
        "Purge poison messages",
    ]
    assert "Restart every consumer" in runbook.steps[0].markdown
    assert "Restart every consumer" not in runbook.steps[1].markdown


def test_an_introduction_under_a_section_name_is_still_read_with_its_first_step() -> None:
    runbook = parse_runbook(
        "# Backlog\n\n## Mitigation\n\nTwo approaches can be used.\n\n"
        "### Scale the consumers\n\nAdd replicas.\n\n### Pause the producers\n\nFlip the flag.\n",
        runbook_id="backlog",
    )
    assert [s.title for s in runbook.steps] == ["Scale the consumers", "Pause the producers"]
    assert runbook.steps[0].markdown.startswith("Two approaches can be used.")


INDENTED_TEMPLATE = """\
# Regenerate the HAProxy config

## Mitigation

Render the template on the bastion. The template is:

    global
        maxconn 50000
    {% for backend in backends %}
    backend {{ backend.name }}
    {% endfor %}
    {{ site.data.haproxy.footer }}

{% include footer.html %}
"""


def test_template_lines_in_an_indented_code_block_are_kept() -> None:
    runbook = parse_runbook(INDENTED_TEMPLATE, runbook_id="haproxy")
    markdown = "\n".join(s.markdown for s in runbook.steps)
    for line in ("{% for backend in backends %}", "{% endfor %}", "{{ site.data.haproxy.footer }}"):
        assert f"    {line}" in markdown
    assert "include footer.html" not in markdown  # the site's own tag, at the margin: hidden


def test_a_fence_line_with_an_info_string_does_not_close_a_fence() -> None:
    runbook = parse_runbook(
        "# Docs\n\n## Mitigation\n\n```markdown\nWrite:\n```text\n{% include x.html %}\n```\n",
        runbook_id="docs",
    )
    assert "{% include x.html %}" in runbook.steps[0].markdown


def test_tabs_inside_call_outs_are_kept() -> None:
    text = (
        "# Fix the Makefile\n\n## Mitigation\n\n"
        '!!! note "Makefile target"\n    Add this target:\n\n    ```make\n    hotfix:\n'
        '    \tkubectl apply -f hotfix.yaml\n    \tprintf "a\tb"\n    ```\n\n'
        ':::tip Split a line\n```sh\ncut -d"\t" -f2 file\n```\n:::\n'
    )
    markdown = "\n".join(s.markdown for s in parse_runbook(text, runbook_id="make").steps)
    assert '\tkubectl apply -f hotfix.yaml\n> \tprintf "a\tb"' in markdown
    assert 'cut -d"\t" -f2 file' in markdown


def test_a_line_break_in_a_title_separates_words() -> None:
    runbook = parse_runbook(
        "# LB\n\n## Mitigation\n\n1. Roll back<br>then wait for the targets\n2. Verify\n",
        runbook_id="lb",
    )
    assert runbook.steps[0].title == "Roll back then wait for the targets"


def test_a_file_whose_only_heading_is_a_section_name_is_titled_after_the_file() -> None:
    runbook = parse_runbook("## Mitigation\n\n- [ ] Rotate the token\n", runbook_id="github-token")
    assert runbook.title == "Github token"
    assert [s.title for s in runbook.steps] == ["Rotate the token"]


def test_a_section_page_with_a_byte_order_mark_and_only_front_matter_is_not_a_runbook(
    tmp_path: Path,
) -> None:
    section = tmp_path / "db"
    section.mkdir()
    (tmp_path / "_index.md").write_text("\ufeff---\ntitle: Runbooks\nweight: 1\n---\n")
    (section / "replica-lag.md").write_text("# Replica lag\n\n1. Check the lag\n")
    catalog = RunbookCatalog.load([tmp_path])
    assert [r.title for r in catalog] == ["Replica lag"]


def test_front_matter_after_a_blank_first_line_is_read_with_a_warning() -> None:
    runbook = parse_runbook(
        "\n---\ntitle: Token expired\nalerts: [GithubTokenExpired]\n---\n\n## Mitigation\n\n"
        "- [ ] Rotate the token\n",
        runbook_id="token",
    )
    assert (runbook.title, runbook.alerts) == ("Token expired", ("GithubTokenExpired",))
    assert [s.title for s in runbook.steps] == ["Rotate the token"]
    [problem] = runbook.problems
    assert (problem.line, problem.level) == (2, "warning")
    assert "after blank lines" in problem.message


def test_a_rule_after_a_blank_first_line_is_still_a_rule() -> None:
    runbook = parse_runbook("\n---\n\n# Redis down\n\n1. Restart it\n", runbook_id="redis")
    assert runbook.title == "Redis down"
    assert runbook.problems == ()


def test_html_links_and_images_in_a_step_keep_their_targets() -> None:
    shown = markdown_to_mrkdwn(
        'Open the <a href="https://grafana.example.com/d/gw?a=1&amp;b=2">gateway dashboard</a>, '
        "see the <img src='https://example.com/flow.png' alt=\"throttling flow\"> and never "
        '<a href="javascript:alert(1)">click this</a>.'
    )
    assert shown == (
        "Open the <https://grafana.example.com/d/gw?a=1&amp;b=2|gateway dashboard>, see the "
        "<https://example.com/flow.png|throttling flow> and never click this "
        "(javascript:alert(1))."
    )


def test_a_title_heading_holding_the_sections_before_an_appendix_keeps_its_intro_apart() -> None:
    runbook = parse_runbook(
        "# Redis failover\n\nThis covers a manual failover when Sentinel does not promote.\n\n"
        "## Steps\n\n1. Confirm the primary is down\n2. Promote the replica\n\n"
        "# Appendix\n\n## Useful commands\n\n```sh\nredis-cli info replication\n```\n",
        runbook_id="redis",
    )
    assert runbook.title == "Redis failover"
    assert runbook.description.startswith("This covers a manual failover")
    assert [s.title for s in runbook.steps] == [
        "Confirm the primary is down",
        "Promote the replica",
    ]
    assert "This covers" not in runbook.steps[0].markdown
    assert [c.title for c in runbook.context] == ["Overview", "Appendix"]


def test_the_same_steps_under_two_headings_say_which_heading_they_are_under() -> None:
    region = (
        "### Check replication\n\n```sql\nSELECT 1;\n```\n\n### Promote\n\n```sh\npromote {}\n```\n"
    )
    runbook = parse_runbook(
        "# Database failover\n\n## Primary region\n\n"
        + region.format("db-2")
        + "\n## Secondary region\n\n"
        + region.format("db-5"),
        runbook_id="db",
    )
    assert [(s.section, s.title) for s in runbook.steps] == [
        ("Primary region", "Check replication"),
        ("Primary region", "Promote"),
        ("Secondary region", "Check replication"),
        ("Secondary region", "Promote"),
    ]
    [page] = render_runbook_pages(runbook, steps_per_page=10)
    shown = "\n".join(b["text"]["text"] for b in page.blocks if b["type"] == "section")
    assert shown.index("*Primary region*") < shown.index("db-2") < shown.index("*Secondary region*")


def test_a_details_block_or_comment_after_an_item_belongs_to_that_item() -> None:
    runbook = parse_runbook(
        "# Cache stampede\n\n## Mitigation\n\n- [ ] Enable request coalescing\n<!--\n"
        "- [ ] Flush the whole cache (disabled)\n-->\n- [ ] Raise the TTL of hot keys\n\n"
        "<details>\n<summary>How to find hot keys</summary>\n\nRun `redis-cli --hotkeys`.\n"
        "</details>\n\n- [ ] Watch the origin request rate\n",
        runbook_id="cache",
    )
    assert [s.title for s in runbook.steps] == [
        "Enable request coalescing",
        "Raise the TTL of hot keys",
        "Watch the origin request rate",
    ]
    assert "How to find hot keys" in runbook.steps[1].markdown
    assert runbook.steps[2].markdown == "Watch the origin request rate"
    shown = markdown_to_mrkdwn(runbook.steps[0].markdown)
    assert "Flush" not in shown  # a comment is a note to the authors


def test_lint_finds_placeholders_and_empty_items_in_lists(tmp_path: Path) -> None:
    path = tmp_path / "redis.md"
    path.write_text(
        "# Redis failover\n\n## Mitigation\n\n1. TODO\n2. Promote the replica\n"
        "3. <!-- fill in the DNS switch -->\n- [ ] TBD\n"
    )
    report = lint_paths([path])
    assert [(m.line, m.level, m.message) for m in report.messages] == [
        (5, "warning", "placeholder text (TODO): fill it in"),
        (
            7,
            "error",
            "step 3 ('Mitigation (3)') has no text: write what responders should do, "
            "or remove the item",
        ),
        (8, "warning", "placeholder text (TODO): fill it in"),
    ]


def test_obsidian_call_outs_show_their_type_and_title_not_their_marker() -> None:
    text = (
        "# ELB 5xx\n\n> [!danger] Production only\n> Never run step 2 against staging.\n\n"
        "> [!warning]- Why this happens\n> Usually a bad deploy.\n\n"
        "## Mitigation\n\n1. Check the target health\n\n> [!WARNING]\n> Drain first.\n"
    )
    runbook = parse_runbook(text, runbook_id="elb")
    assert runbook.description == "Production only Never run step 2 against staging."
    [overview] = runbook.context
    assert markdown_to_mrkdwn(overview.markdown) == (
        "> :warning: *Production only*\n> Never run step 2 against staging.\n\n"
        "> :warning: *Why this happens*\n> Usually a bad deploy."
    )
    assert "> :warning: *Warning*\n> Drain first." in markdown_to_mrkdwn(runbook.steps[0].markdown)
