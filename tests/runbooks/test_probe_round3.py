"""Runbooks as teams really write them, from the third probe: the parts of a command a
responder fills in (``<pod-name>``) reach Slack as written, Slack's own markup in a runbook
never pings, and a long checklist is read in one pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.runbooks.dialect import is_html
from bot.runbooks.lint import lint_paths
from bot.runbooks.parser import parse_runbook
from bot.slack.runbook_messages import markdown_to_mrkdwn, render_runbook_pages

PLACEHOLDERS = """\
# Pod stuck terminating

1. Find it: `kubectl get pods -n <namespace>`
2. Force delete it: kubectl delete pod <pod-name> -n <namespace> --grace-period=0 --force
3. Tell <team> in <#C123> what you did<br>and when: press <kbd>Ctrl</kbd>+<kbd>C</kbd> first
"""


def test_placeholders_in_prose_reach_slack_as_written() -> None:
    runbook = parse_runbook(PLACEHOLDERS, runbook_id="pods")
    assert [s.title for s in runbook.steps][1] == (
        "Force delete it: kubectl delete pod <pod-name> -n <namespace> --grace-period=0 --force"
    )
    shown = markdown_to_mrkdwn(runbook.steps[1].markdown)
    assert "kubectl delete pod &lt;pod-name&gt; -n &lt;namespace&gt; --grace-period=0" in shown
    third = markdown_to_mrkdwn(runbook.steps[2].markdown)
    # Real formatting tags still format; a placeholder next to them stays a word.
    assert "Tell &lt;team&gt;" in third and "\nand when" in third and "`Ctrl`+`C`" in third
    for page in render_runbook_pages(runbook, steps_per_page=10):
        text = "\n".join(b["text"]["text"] for b in page.blocks if b["type"] == "section")
        assert "&lt;pod-name&gt;" in text


def test_slack_markup_written_in_a_runbook_is_shown_and_never_pings() -> None:
    shown = markdown_to_mrkdwn(
        "Ping <!subteam^S0123|@oncall> and <!here>, not <!channel>. <!-- a note to authors -->"
    )
    assert shown == ("Ping &lt;!subteam^S0123|@oncall&gt; and &lt;!here&gt;, not &lt;!channel&gt;.")
    assert "mailto" not in shown


@pytest.mark.parametrize(
    ("raw", "markup"),
    [
        ("<br>", True),
        ("<br/>", True),
        ("</details>", True),
        ('<span class="x">', True),
        ('<input type="checkbox">', True),  # a task list's box
        ("<!-- note -->", True),
        ("<!DOCTYPE html>", True),
        ("<pod-name>", False),
        ("<namespace>", False),
        ("<title>", False),
        ("<pod name>", False),
        ("</namespace>", False),
        ("<!here>", False),
    ],
)
def test_which_inline_html_is_markup(raw: str, markup: bool) -> None:
    assert is_html(raw) is markup


def test_a_long_checklist_is_every_step_in_order() -> None:
    items = 3_000
    text = "# Hosts\n\n## Steps\n\n" + "".join(
        f"- [{'x' if i % 7 == 0 else ' '}] check host {i} `ssh h{i} uptime`\n" for i in range(items)
    )
    runbook = parse_runbook(text, runbook_id="hosts")
    assert [(s.title, s.markdown) for s in runbook.steps] == [
        (f"check host {i} ssh h{i} uptime", f"check host {i} `ssh h{i} uptime`")
        for i in range(items)
    ]


def test_characters_a_writer_escaped_do_not_become_slack_formatting() -> None:
    """Slack has no escape for ``*``: a literal one in prose (escaped in Markdown) is shown as
    code, as titles show theirs; Markdown's own emphasis is still Slack's, and a bare address
    stays a link Slack makes by itself."""
    shown = markdown_to_mrkdwn(
        r"Escaped \*not bold\* and \_not italic\_, but **bold** and _italic_;"
        " see https://grafana.example.com/d/abc_def?x=1_2 for kube_pod_status"
    )
    assert shown == (
        "Escaped `*not` `bold*` and `_not` `italic_`, but *bold* and _italic_;"
        " see https://grafana.example.com/d/abc_def?x=1_2 for `kube_pod_status`"
    )


def test_a_horizontal_rule_at_the_top_is_not_taken_for_front_matter() -> None:
    text = (
        "---\n\n# Restore from backup\n\n**Owner:** storage team\n\n---\n\n## Restore\n\n"
        "1. Stop writes: `kubectl scale deploy api --replicas=0`\n"
        "2. Restore: `restic restore latest --target /data`\n"
    )
    runbook = parse_runbook(text, runbook_id="restore")
    assert runbook.title == "Restore from backup"
    assert [s.title for s in runbook.steps] == [
        "Stop writes: kubectl scale deploy api --replicas=0",
        "Restore: restic restore latest --target /data",
    ]
    assert [(p.line, p.level) for p in runbook.problems] == [(1, "warning")]
    assert "not YAML front matter" in runbook.problems[0].message
    # Front matter that is YAML, even with a comment that looks like a heading, stays so.
    yaml_first = "---\n# owned by storage\ntitle: Restore\nalerts: [DiskFull]\n---\n\n1. Go\n"
    runbook = parse_runbook(yaml_first, runbook_id="restore")
    assert (runbook.title, runbook.alerts, runbook.problems) == ("Restore", ("DiskFull",), ())


def test_lint_warns_that_a_quoted_checklist_is_not_steps(tmp_path: Path) -> None:
    path = tmp_path / "flags.md"
    path.write_text(
        "# Kill switch\n\n> **Warning**\n>\n> - [ ] Open LaunchDarkly\n"
        "> - [ ] Turn off `checkout-v2`\n\n- [ ] Post in #status\n",
        encoding="utf-8",
    )
    report = lint_paths([path])
    assert [(m.line, m.level, m.message.split(":")[0]) for m in report.messages] == [
        (5, "warning", "a checklist inside a quote (>) is shown as text, not as steps")
    ]


def test_broken_yaml_front_matter_with_a_comment_is_still_an_error() -> None:
    """A ``# comment`` in YAML looks like a heading; with ``key:`` lines it is front matter,
    and its mistake is an error at its line, not a horizontal rule."""
    text = "---\n# Metadata for the catalog\ntitle: Restore\nservices: [api, db\n---\n\n1. Go\n"
    runbook = parse_runbook(text, runbook_id="restore")
    assert [(p.level, p.message.split(":")[0]) for p in runbook.problems] == [
        ("error", "invalid YAML front matter")
    ]


def test_emoji_shortcodes_and_addresses_stay_what_slack_makes_of_them() -> None:
    assert markdown_to_mrkdwn("Post :white_check_mark: when done, then :+1:") == (
        "Post :white_check_mark: when done, then :+1:"
    )
    assert markdown_to_mrkdwn("Mail db_oncall@example.com or see kube_pod_status") == (
        "Mail db_oncall@example.com or see `kube_pod_status`"
    )


def test_a_runbook_link_whose_label_shows_another_address_is_shown_as_its_target() -> None:
    """``[https://kubernetes.io](https://evil.example.com)`` would read as a link to the
    Kubernetes docs; a responder clicks what they see. A label that names the target's own
    host, or is a word, stays."""
    shown = markdown_to_mrkdwn(
        "See [https://kubernetes.io](https://evil.example.com/x), "
        "[kubernetes.io](https://kubernetes.io/docs) and [the docs](https://x.io)"
    )
    assert "<https://evil.example.com/x>" in shown and "kubernetes.io>" not in shown.split(",")[0]
    assert "<https://kubernetes.io/docs|kubernetes.io>" in shown
    assert "<https://x.io|the docs>" in shown


def test_bidirectional_controls_in_a_command_are_shown_not_obeyed() -> None:
    """U+202E in a runbook's command makes Slack show it reversed while the copy runs what was
    written ("Trojan Source"): the control is shown by its code point."""
    shown = markdown_to_mrkdwn("Run:\n\n```\nrm -rf /tmp/cache\u202e/ x\u202c\n```\n")
    assert "\u202e" not in shown and "\u202c" not in shown
    assert "rm -rf /tmp/cache⟦U+202E⟧/ x⟦U+202C⟧" in shown
