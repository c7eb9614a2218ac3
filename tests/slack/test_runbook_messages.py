"""Markdown -> Slack mrkdwn, and the runbook run message within Slack's limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.runbooks.parser import load_runbook_file, parse_runbook
from bot.runbooks.progress import DONE, RunView, StepView
from bot.slack.limits import SECTION_TEXT, message_errors
from bot.slack.runbook_messages import (
    FALLBACK_TEXT_MAX,
    PAGE_TEXT_BUDGET,
    RunbookAction,
    action_id,
    blocks_to_text,
    markdown_to_mrkdwn,
    message_text_size,
    mrkdwn_sections,
    parse_runbook_action,
    render_run_message,
    render_runbook_pages,
    steps_preview,
)


def mrkdwn(markdown: str) -> str:
    return markdown_to_mrkdwn(markdown)


# --------------------------------------------------------------------------------------------
# mrkdwn conversion


def test_inline_formatting() -> None:
    assert mrkdwn("**bold** and __also__") == "*bold* and *also*"
    assert mrkdwn("*it* and _it_") == "_it_ and _it_"
    assert mrkdwn("~~gone~~") == "~gone~"
    assert mrkdwn("run `ls -l`") == "run `ls -l`"


def test_special_characters_are_escaped_outside_code_and_only_they_inside() -> None:
    assert mrkdwn("a < b && c > d") == "a &lt; b &amp;&amp; c &gt; d"
    assert mrkdwn("`a<b>&*c*`") == "`a&lt;b&gt;&amp;*c*`"
    fenced = mrkdwn('```bash\necho "<hi>" && ls *.txt | _x_\n   indented\n```')
    assert fenced == '```\necho "&lt;hi&gt;" &amp;&amp; ls *.txt | _x_\n   indented\n```'


def test_links_images_and_bare_urls() -> None:
    assert mrkdwn("[docs](https://x.io/a?b=1&c=2)") == "<https://x.io/a?b=1&amp;c=2|docs>"
    assert mrkdwn("<https://auto.link/x>") == "<https://auto.link/x>"
    assert mrkdwn("see https://e.com/x now") == "see https://e.com/x now"
    assert mrkdwn("![graph](https://img.io/g.png)") == "<https://img.io/g.png|graph>"
    assert mrkdwn("[other](../disk-full.md)") == "other (../disk-full.md)"
    assert mrkdwn("[below](#mitigation)") == "below"
    assert mrkdwn("[a|b](https://x.io/p|q)") == "<https://x.io/p%7Cq|a|b>"


def test_headings_lists_and_quotes() -> None:
    assert mrkdwn("## Check the pods") == "*Check the pods*"
    assert mrkdwn("- a\n  - b\n    1. c\n- d") == "• a\n    ◦ b\n        1. c\n• d"
    assert mrkdwn("3. three\n4. four") == "3. three\n4. four"
    assert mrkdwn("- [ ] open\n- [x] done") == "☐ open\n☑ done"
    assert mrkdwn("> quoted *text*\n> more") == "> quoted _text_ more"


def test_github_call_outs_in_quotes_are_labelled() -> None:
    assert mrkdwn("> [!WARNING]\n> This deletes data.") == (
        "> :warning: *Warning*\n> This deletes data."
    )


def test_paragraph_line_wrapping_is_joined_and_hard_breaks_are_kept() -> None:
    assert mrkdwn("one\ntwo\n\nthree  \nfour") == "one two\n\nthree\nfour"


def test_code_inside_a_list_item_is_a_code_block() -> None:
    assert mrkdwn("1. Run:\n\n   ```\n   df -h\n   ```\n2. Next") == (
        "1. Run:\n```\ndf -h\n```\n2. Next"
    )


def test_tables_become_an_aligned_monospace_block() -> None:
    table = "| Name | Count |\n|:-----|------:|\n| a & b | 1 |\n| longer | 22 |"
    assert mrkdwn(table) == (
        "```\nName   | Count\n-------+------\na &amp; b  |     1\nlonger |    22\n```"
    )


def test_raw_html_is_readable_text_with_the_summary_in_bold() -> None:
    html = "<details>\n<summary>Full context</summary>\n\nHidden <b>text</b>.\n</details>"
    assert mrkdwn(html) == "*Full context*\n\nHidden *text*."
    assert mrkdwn("<!-- a comment -->\n\nText") == "Text"
    assert mrkdwn("<pre>\na < b\n</pre>") == "```\na &lt; b\n```"
    assert mrkdwn('<p>See <a href="https://x.io">x</a><br>next</p>') == "See <https://x.io|x>\nnext"


def test_long_code_is_split_into_sections_closing_and_reopening_the_fence() -> None:
    lines = [f"line {i:04d} " + "x" * 60 for i in range(200)]
    sections = mrkdwn_sections("Run this:\n\n```\n" + "\n".join(lines) + "\n```\n\nDone.")

    assert len(sections) > 1
    assert all(len(s) <= SECTION_TEXT for s in sections)
    assert all(s.count("```") % 2 == 0 for s in sections)
    code = [line for s in sections for line in s.split("\n") if line.startswith("line ")]
    assert code == lines
    assert sections[0].startswith("Run this:")
    assert sections[-1].endswith("Done.")


def test_splitting_prose_never_cuts_a_link_or_an_escape() -> None:
    url = "https://example.com/" + "p" * 50
    sections = mrkdwn_sections(" ".join([f"word & [label]({url})"] * 200))

    assert len(sections) > 1
    for section in sections:
        assert len(section) <= SECTION_TEXT
        assert section.count("<") == section.count(">") == section.count("|label>")
        assert not re.search(r"&(?!amp;|lt;|gt;)", section)


# --------------------------------------------------------------------------------------------
# The run message


def make_view(
    markdown: str, states: dict[int, StepView] | None = None, *, page: int = 0
) -> RunView:
    runbook = parse_runbook(markdown, runbook_id="ops/test")
    states = states or {}
    return RunView(
        id=7,
        incident_id=1,
        runbook_id=runbook.id,
        title=runbook.title,
        snapshot=runbook.snapshot(),
        status="active",
        page=page,
        steps=tuple(states.get(i, StepView(index=i)) for i in range(len(runbook.steps))),
    )


def checklist(count: int, body: str = "") -> str:
    return "# Restore service\n\n" + "\n".join(
        f"- [ ] Step number {i}{body}" for i in range(1, count + 1)
    )


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    ids = []
    for block in blocks:
        for element in block.get("elements", []):
            if "action_id" in element:
                ids.append(element["action_id"])
        if "accessory" in block:
            ids.append(block["accessory"]["action_id"])
    return ids


def assert_valid(message: Any) -> None:
    assert message_errors(message.text, message.blocks) == []
    assert message_text_size(message.blocks) <= PAGE_TEXT_BUDGET
    assert len(message.text) < FALLBACK_TEXT_MAX


def test_run_message_shows_title_progress_and_each_state() -> None:
    at = datetime(2024, 5, 1, 14, 30, tzinfo=UTC)
    view = make_view(
        checklist(12),
        {
            0: StepView(0, "done", updated_by="U1", updated_at=at),
            1: StepView(1, "done", updated_by="U1", updated_at=at),
            2: StepView(2, "done", updated_by="U2", updated_at=at),
            3: StepView(3, "skipped", updated_by="U2", updated_at=at),
            5: StepView(5, "in_progress", assignee_id="U3", started_at=at, updated_by="U1"),
        },
    )
    message = render_run_message(view, steps_per_page=10)
    assert_valid(message)
    blocks = message.blocks

    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Runbook: Restore service", "emoji": True},
    }
    status = blocks[1]["elements"][0]["text"]
    assert "3/12 done, 1 skipped, 1 in progress" in status
    assert "page 1 of 2" in status
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert any("~1. Step number 1~" in t and "done by <@U1>" in t and "<!date^" in t for t in texts)
    assert any("~4. Step number 4~" in t and "skipped by <@U2>" in t for t in texts)
    assert any(t.startswith(":arrow_forward:") and "5." in t for t in texts)
    assert any("Assigned to <@U3>" in t for t in texts)
    assert "Next: step 5" in message.text


def test_buttons_use_routable_unique_action_ids() -> None:
    view = make_view(
        checklist(12), {0: StepView(0, "done"), 2: StepView(2, "in_progress", assignee_id="U9")}
    )
    message = render_run_message(view, steps_per_page=10)
    ids = action_ids(message.blocks)

    assert len(ids) == len(set(ids))
    assert "runbook:reopen:7:0" in ids  # done steps can be reopened
    assert {"runbook:done:7:1", "runbook:skip:7:1", "runbook:assign:7:1"} <= set(ids)
    assert "runbook:unassign:7:2" in ids  # an assigned step can be released
    assert "runbook:page:7:1" in ids
    assert all(parse_runbook_action(i) is not None for i in ids)
    next_done = next(
        e
        for b in message.blocks
        for e in b.get("elements", [])
        if e.get("action_id") == "runbook:done:7:1"
    )
    assert next_done["style"] == "primary"
    assign = next(
        e
        for b in message.blocks
        for e in b.get("elements", [])
        if e.get("action_id") == "runbook:assign:7:2"
    )
    assert assign["type"] == "users_select"
    assert assign["initial_user"] == "U9"


def test_pages_follow_steps_per_page_with_previous_and_next() -> None:
    view = make_view(checklist(25))

    middle = render_run_message(view, steps_per_page=10, page=1)
    ids = action_ids(middle.blocks)
    assert "runbook:page:7:0" in ids and "runbook:page:7:2" in ids
    assert "runbook:done:7:10" in ids and "runbook:done:7:19" in ids
    assert "runbook:done:7:9" not in ids and "runbook:done:7:20" not in ids

    last = render_run_message(view, steps_per_page=10, page=99)  # clamped to the last page
    assert "runbook:done:7:24" in action_ids(last.blocks)
    assert "runbook:page:7:3" not in action_ids(last.blocks)


def test_a_runbook_with_300_steps_fits_on_every_page_and_shows_each_step_once() -> None:
    runbook = parse_runbook(checklist(300), runbook_id="big")
    seen: list[int] = []
    for steps_per_page in (1, 10, 20):
        pages = render_runbook_pages(runbook, steps_per_page=steps_per_page)
        assert len(pages) == -(-300 // steps_per_page)
        seen = []
        for page in pages:
            assert_valid(page)
            seen += [
                parsed.step
                for i in action_ids(page.blocks)
                if (parsed := parse_runbook_action(i))
                and parsed.verb == "done"
                and parsed.step is not None
            ]
        assert seen == list(range(300))


def test_a_step_of_20000_characters_is_split_and_cut_with_a_note() -> None:
    words = " ".join(f"word{i}" for i in range(2600))
    code = "\n".join("echo " + "z" * 90 for _ in range(60))
    text = f"# Huge\n\n## Mitigation\n\n{words}\n\n```\n{code}\n```\n"
    runbook = parse_runbook(text, runbook_id="huge")
    assert len(runbook.steps[0].markdown) > 20_000

    for steps_per_page in (1, 10, 20):
        (page,) = render_runbook_pages(runbook, steps_per_page=steps_per_page)
        assert_valid(page)
        sections = [b["text"]["text"] for b in page.blocks if b["type"] == "section"]
        assert "read the rest in the runbook file (line 3)" in sections[-1]
        assert all(s.count("```") % 2 == 0 for s in sections)


def test_twenty_long_steps_on_one_page_share_the_budget() -> None:
    runbook = parse_runbook(checklist(20, " " + "detail " * 700), runbook_id="long")

    (page,) = render_runbook_pages(runbook, steps_per_page=20)
    assert_valid(page)
    assert sum(1 for i in action_ids(page.blocks) if i.startswith("runbook:done:")) == 20


def test_a_step_without_text_says_so() -> None:
    message = render_run_message(make_view("# X\n\n## Mitigation\n"), steps_per_page=10)

    assert any(
        "No instructions were written" in b["text"]["text"]
        for b in message.blocks
        if b["type"] == "section"
    )


def test_action_ids_round_trip_and_anything_else_is_ignored() -> None:
    assert parse_runbook_action(action_id("done", 12, 3)) == RunbookAction("done", 12, step=3)
    assert parse_runbook_action("runbook:page:12:2") == RunbookAction("page", 12, page=2)
    for bad in ("runbook:done:x:1", "runbook:explode:1:1", "summary:ack:1", "runbook:done:1"):
        assert parse_runbook_action(bad) is None


def test_text_preview_reads_like_the_message() -> None:
    runbook = parse_runbook(checklist(3), runbook_id="r")
    text = blocks_to_text(render_runbook_pages(runbook, steps_per_page=10)[0].blocks)

    assert "Runbook: Restore service" in text
    assert "[Done] [Skip] [Assign…]" in text
    assert steps_preview(runbook) == (
        "Restore service (3 steps)\n1. Step number 1\n2. Step number 2\n3. Step number 3"
    )
    assert steps_preview(runbook, max_steps=1).endswith("… and 2 more")


# --------------------------------------------------------------------------------------------
# Context: shown in full where it fits, HTML as readable text

REPO = Path(__file__).resolve().parents[2]


def page_text(message: Any) -> str:
    return "\n".join(
        b["text"]["text"] for b in message.blocks if b["type"] == "section" and "text" in b
    )


def test_context_is_shown_in_full_when_it_fits() -> None:
    runbook = load_runbook_file(REPO / "runbooks" / "disk-full.md", "disk-full")
    (overview,) = [c for c in runbook.context if c.title == "Overview"]
    assert len(overview.markdown) > 200

    first = render_runbook_pages(runbook, steps_per_page=10)[0]
    assert_valid(first)
    text = page_text(first)
    assert " ".join(markdown_to_mrkdwn(overview.markdown).split()) in " ".join(text.split())
    assert "Never delete files you do not understand" in text
    assert "more context in the runbook file" not in text


def test_context_sections_keep_their_paragraphs_lists_and_code() -> None:
    text = """\
# Payments DB failover

## Meaning

The primary is down.

The replicas keep serving reads:

- `replica-1` in eu-west-1a
- `replica-2` in eu-west-1b

## Links

[Dashboard](https://grafana.example.com/d/payments)

## Mitigation

Promote a replica.
"""
    message = render_runbook_pages(parse_runbook(text, runbook_id="db"), steps_per_page=10)[0]
    shown = page_text(message)

    assert "*Meaning*\nThe primary is down.\n\nThe replicas keep serving reads:" in shown
    assert "• `replica-2` in eu-west-1b" in shown
    assert "*Links*\n<https://grafana.example.com/d/payments|Dashboard>" in shown


def test_html_in_context_keeps_its_readable_text() -> None:
    text = """\
# Payments API restart

<div class="confluence-information-macro"><p>Only on-call SREs should run this.</p></div>

<table><tr><th>Owner</th><td>Payments team</td></tr></table>

## Steps

- [ ] Restart the deployment
"""
    runbook = parse_runbook(text, runbook_id="payments-restart")
    shown = page_text(render_runbook_pages(runbook, steps_per_page=10)[0])

    assert "Only on-call SREs should run this." in shown
    assert "Owner | Payments team" in shown
    assert "<div" not in shown and "&lt;div" not in shown


def test_namespaced_tags_show_their_text_without_the_markup() -> None:
    macro = (
        '<ac:structured-macro ac:name="warning"><ac:rich-text-body><p>Never promote both '
        "replicas.</p></ac:rich-text-body></ac:structured-macro>"
    )
    assert mrkdwn(macro) == ":warning: *Warning*\nNever promote both replicas."
    assert mrkdwn(f"Before you start:\n\n{macro}").endswith("Never promote both replicas.")

    code = (
        '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash'
        "</ac:parameter><ac:plain-text-body><![CDATA[kubectl get pods -n payments]]>"
        "</ac:plain-text-body></ac:structured-macro>"
    )
    assert mrkdwn(code) == "```\nkubectl get pods -n payments\n```"

    link = 'See <ac:link><ri:page ri:content-title="DB failover" /></ac:link> first.'
    assert mrkdwn(link) == "See DB failover first."
    # an autolink with a scheme is still a link
    assert mrkdwn("<tel:+15551234567>") == "<tel:+15551234567>"


def test_long_context_is_split_into_sections_and_cut_only_for_the_page_budget() -> None:
    paragraphs = "\n\n".join(f"Background paragraph {i}: " + "detail " * 60 for i in range(60))
    text = f"# Huge context\n\n## Background\n\n{paragraphs}\n\n## Steps\n\n" + "\n".join(
        f"- [ ] Step {i} " + "do this " * 30 for i in range(1, 11)
    )
    runbook = parse_runbook(text, runbook_id="huge")
    assert len(runbook.context[0].markdown) > 20_000

    first = render_runbook_pages(runbook, steps_per_page=10)[0]
    assert_valid(first)
    shown = page_text(first)
    assert "Background paragraph 3:" in shown
    assert "_… more context in the runbook file._" in shown
    sections = [b for b in first.blocks if b["type"] == "section"]
    context = first.blocks[2 : first.blocks.index({"type": "divider"})]
    assert 1 < len(context) <= 3  # several sections, as a long step gets, and no more
    assert all(len(b["text"]["text"]) <= SECTION_TEXT for b in sections)
    # every step is still there, in full
    assert sum(1 for i in action_ids(first.blocks) if i.startswith("runbook:done:")) == 10
    assert "too long for Slack" not in shown


def test_the_full_context_is_on_the_first_page_only() -> None:
    text = (
        "---\ndescription: Free space safely.\n---\n# Disk full\n\n## Impact\n\n"
        "Writes fail.\n\n## Steps\n\n" + "\n".join(f"- [ ] Step {i}" for i in range(1, 16))
    )
    first, second = render_runbook_pages(parse_runbook(text, runbook_id="d"), steps_per_page=10)

    assert "*Impact*\nWrites fail." in page_text(first)
    assert "_Free space safely._" in page_text(first)
    assert "Writes fail." not in page_text(second)
    assert "_Free space safely._" in page_text(second)


# --------------------------------------------------------------------------------------------
# Fuzzing: whatever people write, the bot renders something Slack accepts

_FRAGMENTS = st.sampled_from(
    [
        "# ",
        "## Mitigation\n",
        "### Step\n",
        "- [ ] ",
        "- [x] ",
        "1. ",
        "  - ",
        "> ",
        "```\n",
        "```sh\n",
        "~~~\n",
        "    indented code\n",
        "| a | b |\n|---|---|\n| 1 | 2 |\n",
        "<details><summary>x</summary>\n",
        "</details>\n",
        "**Step 1:** ",
        "**Step 2: x**\n\n",
        "Step 3: ",
        '<ac:structured-macro ac:name="warning"><ac:rich-text-body>',
        "</ac:rich-text-body></ac:structured-macro>",
        "<ac:plain-text-body><![CDATA[x < y]]></ac:plain-text-body>",
        '<ac:link><ri:page ri:content-title="P" /></ac:link>',
        "<table><tr><th>a</th><td>b</td></tr></table>\n",
        "<b>",
        "[link](https://x.io)",
        "[ref][1]",
        "![img](a.png)",
        "**",
        "_",
        "`",
        "&",
        "<",
        ">",
        "---\n",
        "+++\n",
        "title: [x\n",
        "\n",
        "\n\n",
        "x" * 3100,
    ]
)
_TEXT = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=40)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT, steps_per_page=st.integers(min_value=1, max_value=20))
# HTML the standard library's parser gives up on ("<![" opens a marked section).
@example(text="<details><summary>x</summary>\n<![img](a.png)", steps_per_page=1)
def test_any_markdown_parses_and_renders_within_slack_limits(
    text: str, steps_per_page: int
) -> None:
    runbook = parse_runbook(text, runbook_id="fuzz")
    if not runbook.empty:
        assert runbook.steps
    for page in render_runbook_pages(runbook, steps_per_page=steps_per_page):
        assert message_errors(page.text, page.blocks) == []
        assert message_text_size(page.blocks) <= PAGE_TEXT_BUDGET
    for section in mrkdwn_sections(text):
        assert len(section) <= SECTION_TEXT


def test_the_step_to_do_next_is_shown_whole_when_the_page_must_cut() -> None:
    """Ten long steps do not fit one Slack message: the others are cut, but the step the
    responder is on is shown whole, commands and all, and the next one is once it is done."""
    steps = "\n\n".join(
        f"## Step {i}\n\nRun this on every node:\n\n```\n"
        + "\n".join(f"kubectl -n pay-{i} drain node-{n:03} --ignore-daemonsets" for n in range(40))
        + f"\n```\n\nThen confirm node-{i}-last is cordoned."
        for i in range(1, 11)
    )
    markdown = f"# Drain the fleet\n\n{steps}\n"
    first = render_run_message(make_view(markdown), steps_per_page=10)
    assert_valid(first)
    shown = page_text(first)
    assert "too long for Slack" in shown  # the page had to cut
    assert "node-039" in shown.split("Step 2")[0]  # step 1's whole command list
    assert "node-1-last is cordoned" in shown

    done = {0: StepView(index=0, state=DONE)}
    second = render_run_message(make_view(markdown, done), steps_per_page=10)
    assert_valid(second)
    step2 = page_text(second).split("Step 2", 1)[1].split("Step 3")[0]
    assert "kubectl -n pay-2 drain node-039" in step2
    assert "node-2-last is cordoned" in step2


@pytest.mark.parametrize(
    ("heading", "header", "text"),
    [
        ("# Network troubleshooting", "Runbook: Network troubleshooting", "Runbook Network"),
        ("# Runbook: Network troubleshooting", "Runbook: Network troubleshooting", "Runbook: "),
        ("# Playbook - Ransomware", "Playbook - Ransomware", "Playbook - Ransomware: 0/1"),
    ],
)
def test_a_title_that_says_runbook_is_not_said_twice(heading: str, header: str, text: str) -> None:
    message = render_run_message(make_view(f"{heading}\n\n- [ ] Check it\n"), steps_per_page=10)
    assert message.blocks[0]["text"]["text"] == header
    assert message.text.startswith(text)
    assert "Runbook: Runbook" not in message.text
