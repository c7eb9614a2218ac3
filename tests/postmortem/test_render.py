"""What the draft says: the golden incident, templates (the team's, broken ones, injection),
missing milestones, awkward text and a very long timeline."""

from __future__ import annotations

import html
import logging
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from markdown_it import MarkdownIt
from sqlalchemy import insert

from bot import incidents as core
from bot.audit import chain
from bot.cli import main
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.markup import escape_markdown_text
from bot.models import EventKind, Postmortem, TimelineEvent
from bot.postmortem import bounds, generate_on_close, generate_postmortem
from bot.runbooks import progress
from bot.runbooks.parser import parse_runbook

from .scenario import BOB, CLOSED_AT, DAN, ERIN, FRANK, T0, Directory, build_incident

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    """Compare with golden/<name>; UPDATE_GOLDEN=1 rewrites it (then review the diff)."""
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"differs from {path}; see its diff"


def declare(db: Database, policy: Policy, **kwargs: object) -> int:
    kwargs.setdefault("title", "Search is slow")
    kwargs.setdefault("reporter", "U01ALICE")
    with freeze_time(T0), db.transaction() as session:
        incident = core.declare_incident(session, policy, **kwargs).incident  # type: ignore[arg-type]
    assert incident.id is not None
    return incident.id


def generate(db: Database, policy: Policy, incident_id: int, key: str = "k") -> Postmortem:
    with freeze_time(CLOSED_AT), db.transaction() as session:
        return generate_postmortem(session, policy, incident_id, actor="U01ALICE", key=key)


def section(markdown: str, heading: str) -> str:
    """The text of one ``## heading`` section."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"no section {heading!r}"
    return match.group(1)


# --------------------------------------------------------------------------------------------
# The realistic incident


def test_the_draft_of_a_real_incident_matches_the_golden_file(
    db: Database, team_policy: Policy, output_dir: Path
) -> None:
    incident = build_incident(db, team_policy)
    assert incident.id is not None
    with freeze_time(CLOSED_AT), db.transaction() as session:
        change = core.close_incident(session, team_policy, incident.id, actor=FRANK, key="c1")
        postmortem = generate_on_close(session, team_policy, change, actor=FRANK, names=Directory())
    assert postmortem is not None

    check_golden("INC-1-v1.md", postmortem.markdown)
    assert (output_dir / "INC-1-v1.md").read_text(encoding="utf-8") == postmortem.markdown
    assert postmortem.template == "default" and postmortem.template_error is None


def test_the_golden_draft_has_every_section_and_well_formed_tables() -> None:
    markdown = (GOLDEN / "INC-1-v1.md").read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    headings = [
        tokens[i + 1].content
        for i, t in enumerate(tokens)
        if t.type == "heading_open" and t.tag == "h2"
    ]
    assert headings == [
        "Summary",
        "Impact",
        "Key metrics",
        "Timeline",
        "Responders and roles",
        "Runbooks used",
        "Detection",
        "Response and recovery",
        "Contributing factors and trigger",
        "What went well",
        "What went wrong",
        "Where we got lucky",
        "Action items",
        "Links",
    ]
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    # The action item with a pipe and a line break is still one row of five cells.
    rows = re.findall(r"<tr>\s*<td>.*?</tr>", html, re.S)
    [row] = [r for r in rows if "Alert on DB connection pool saturation" in r]
    assert row.count("<td>") == 5
    assert "(&gt; 80% for 5m) | page payments on-call</td>" in row
    # The multi-line code block captured from Slack is a code block inside its entry.
    assert "<pre><code>ERROR pool exhausted: 5/5 connections in use\n" in html


def test_the_draft_records_who_did_what(db: Database, team_policy: Policy) -> None:
    incident = build_incident(db, team_policy)
    assert incident.id is not None
    with freeze_time(CLOSED_AT), db.transaction() as session:
        markdown = generate_postmortem(
            session, team_policy, incident.id, actor=FRANK, key="k", names=Directory()
        ).markdown

    timeline = section(markdown, "Timeline")
    assert "wrong channel, ignore" not in markdown  # the withdrawn capture
    assert (
        "- **03:04** @Erin Weiss — [message](https://example.slack.com/archives/C0INC1/"
        "p177259290100): Seeing 502s from [the payments dashboard]"
        "(https://grafana.example.com/d/pay?orgId=1&env=prod) since the 02:40 deploy; "
        "cc @Bob Okafor @sre-oncall <- please look"
    ) in timeline
    assert "@U07GRACE" in timeline  # unknown to the directory: the id, readable
    roles = section(markdown, "Responders and roles")
    assert "- Incident Commander: @Bob Okafor to @Frank Moreau at 2026-03-04 03:25 UTC" in roles
    runbooks = section(markdown, "Runbooks used")
    assert "5 steps: 2 done, 1 skipped, 2 left open." in runbooks
    assert "| 3 | Flush the CDN cache | skipped | @Bob Okafor | 2026-03-04 03:18 |" in runbooks
    assert "| 5 | Post a customer update | not started |  |  |" in runbooks
    items = section(markdown, "Action items")
    assert (
        "| 3 | Document pool sizing in the rollback runbook | @Dan Kim | 2026-03-06 "
        "| open (overdue) |" in items
    )


def test_without_names_people_are_shown_by_their_ids(db: Database, team_policy: Policy) -> None:
    incident = build_incident(db, team_policy)
    assert incident.id is not None
    markdown = generate(db, team_policy, incident.id).markdown
    assert "- **Incident commander:** @U06FRANK" in markdown
    assert "cc @U02BOB @sre-oncall" in markdown


def test_a_failing_name_lookup_falls_back_to_ids(db: Database, team_policy: Policy) -> None:
    class SlackDown:
        def user(self, user_id: str) -> str | None:
            raise ConnectionError("slack.com unreachable")

        def channel(self, channel_id: str) -> str | None:
            raise ConnectionError("slack.com unreachable")

    incident_id = declare(db, team_policy)
    with db.transaction() as session:
        markdown = generate_postmortem(
            session, team_policy, incident_id, actor="U01ALICE", key="k", names=SlackDown()
        ).markdown
    assert "- **Reported by:** @U01ALICE" in markdown


# --------------------------------------------------------------------------------------------
# Metrics


def test_an_incident_without_milestones_shows_unknown_metrics_never_zero(
    db: Database, team_policy: Policy
) -> None:
    incident_id = declare(db, team_policy)
    markdown = generate(db, team_policy, incident_id).markdown
    metrics = section(markdown, "Key metrics")
    for name in (
        "Time to detect",
        "Time to acknowledge",
        "Time to mitigate",
        "Time to resolve",
        "Total duration",
    ):
        assert re.search(rf"^\| {name} \| unknown \|", metrics, re.M), name
    assert not re.search(r"\| 0[smhd]? \|", metrics)
    assert "`unknown` means a milestone was not recorded" in metrics
    assert "| Detected | unknown |  |" in metrics


def test_metrics_are_computed_from_the_milestones(db: Database, team_policy: Policy) -> None:
    incident_id = declare(
        db,
        team_policy,
        impact_started_at=T0 - timedelta(minutes=30),
        detected_at=T0 - timedelta(minutes=10),
    )
    with freeze_time(T0 + timedelta(minutes=4)), db.transaction() as session:
        core.acknowledge_incident(session, team_policy, incident_id, actor="U2")
    with freeze_time(T0 + timedelta(hours=1, minutes=30)), db.transaction() as session:
        core.resolve_incident(session, team_policy, incident_id, actor="U2")
    metrics = section(generate(db, team_policy, incident_id).markdown, "Key metrics")
    assert "| Time to detect | 20m |" in metrics
    assert "| Time to acknowledge | 4m |" in metrics
    assert "| Time to mitigate | 2h |" in metrics  # resolving without mitigating sets both
    assert "| Time to resolve | 2h |" in metrics
    assert "| Total duration | unknown |" in metrics  # not closed yet
    assert "| Resolved | 2026-03-04 04:25 UTC | 2026-03-04 05:25 CET |" in metrics


def test_metrics_longer_than_a_day_keep_their_hours_and_minutes(
    db: Database, team_policy: Policy
) -> None:
    incident_id = declare(db, team_policy, impact_started_at=T0)
    with freeze_time(T0 + timedelta(minutes=5)), db.transaction() as session:
        core.acknowledge_incident(session, team_policy, incident_id, actor="U2")
    with freeze_time(T0 + timedelta(days=2, minutes=30)), db.transaction() as session:
        core.mitigate_incident(session, team_policy, incident_id, actor="U2")
    with freeze_time(T0 + timedelta(days=2, hours=2, minutes=30)), db.transaction() as session:
        core.resolve_incident(session, team_policy, incident_id, actor="U2")
    metrics = section(generate(db, team_policy, incident_id).markdown, "Key metrics")
    assert "| Time to acknowledge | 5m |" in metrics
    assert "| Time to mitigate | 2d 30m |" in metrics
    assert "| Time to resolve | 2d 2h 30m |" in metrics


# --------------------------------------------------------------------------------------------
# Text that must arrive intact


def test_awkward_text_renders_intact(db: Database, team_policy: Policy) -> None:
    sql = "'; DROP TABLE incidents; -- \" OR 1=1 /* %s \\x00? */"
    emoji = "🔥🧯 payments 💳 down 👩🏽‍💻"
    rtl = "הלקוחות לא יכולים לשלם — العملاء لا يستطيعون الدفع"
    long_note = ("Pool stats: 5/5 used, 212 waiting; " * 400)[:10_000]
    assert len(long_note) == 10_000
    incident_id = declare(db, team_policy, title=f"{sql} {emoji}", summary=rtl)
    with freeze_time(T0 + timedelta(minutes=5)), db.transaction() as session:
        for text in (sql, emoji, rtl, long_note):
            core.add_note(session, team_policy, incident_id, text, actor="U2")
    markdown = generate(db, team_policy, incident_id).markdown
    assert markdown.startswith("# INC-1: ")
    assert _heading(markdown) == f"INC-1: {sql} {emoji}"  # shown as typed
    assert f"\n{rtl}\n" in section(markdown, "Summary")
    timeline = section(markdown, "Timeline")
    for text in (sql, emoji, rtl, long_note):
        assert f"— note: {escape_markdown_text(text)}\n" in timeline  # shown as typed


def test_multi_line_notes_stay_inside_their_timeline_entry(
    db: Database, team_policy: Policy
) -> None:
    incident_id = declare(db, team_policy)
    note = "Tried:\n\n# restarting\n- the pods\n<div>nothing</div>"
    with freeze_time(T0 + timedelta(minutes=5)), db.transaction() as session:
        core.add_note(session, team_policy, incident_id, note, actor="U2")
        core.add_note(session, team_policy, incident_id, "next entry", actor="U2")
    markdown = generate(db, team_policy, incident_id).markdown
    tokens = MarkdownIt("commonmark").parse(section(markdown, "Timeline"))
    items = [t for t in tokens if t.type == "list_item_open" and t.level == 1]
    assert len(items) == 3  # declared, the note, the next entry: the note's "- " is nested
    assert "h2" not in {t.tag for t in tokens if t.type == "heading_open"}
    assert "&lt;div&gt;nothing&lt;/div&gt;" in MarkdownIt("commonmark").render(markdown)


def test_a_code_fence_left_open_in_the_summary_stays_in_the_summary(
    db: Database, team_policy: Policy
) -> None:
    def h2(markdown: str) -> list[str]:
        tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
        return [
            tokens[i + 1].content
            for i, t in enumerate(tokens)
            if t.type == "heading_open" and t.tag == "h2"
        ]

    plain = generate(db, team_policy, declare(db, team_policy, summary="Pods crash."), key="a")
    fenced = generate(
        db,
        team_policy,
        declare(db, team_policy, summary="Pods crash. Output was:\n```\nCrashLoopBackOff"),
        key="b",
    )
    assert h2(fenced.markdown) == h2(plain.markdown)
    assert "<pre><code>CrashLoopBackOff\n</code></pre>" in MarkdownIt("commonmark").render(
        fenced.markdown
    )


def test_incident_text_is_never_run_as_template_code(db: Database, team_policy: Policy) -> None:
    title = "{{ 7*7 }} {% raw %} {{ incident.__class__ }}"
    note = "{% for x in range(3) %}boom{% endfor %} {# hidden #} {{ config }}"
    incident_id = declare(db, team_policy, title=title, summary="{% endraw %}{{ version }}")
    with freeze_time(T0 + timedelta(minutes=5)), db.transaction() as session:
        core.add_note(session, team_policy, incident_id, note, actor="U2")
        core.add_action_item(session, team_policy, incident_id, "{{ 6*7 }}", actor="U2")
    postmortem = generate(db, team_policy, incident_id)
    assert postmortem.template_error is None
    markdown = postmortem.markdown
    assert markdown.startswith("# INC-1: ")
    assert _heading(markdown) == f"INC-1: {title}"
    assert "{% endraw %}{{ version }}" in markdown
    assert f"— note: {escape_markdown_text(note)}\n" in markdown
    assert "| 1 | {{ 6\\*7 }} |" in markdown
    assert "49" not in markdown and "42" not in markdown and "boomboom" not in markdown


# --------------------------------------------------------------------------------------------
# The team's template


def team_template(tmp_path: Path, text: str, output_dir: Path) -> tuple[Policy, Path]:
    directory = tmp_path / "templates"
    directory.mkdir(exist_ok=True)
    path = directory / "postmortem.md.j2"
    path.write_text(text, encoding="utf-8")
    policy = policy_from_dict(
        {"postmortem": {"template_dir": str(directory), "output_dir": str(output_dir)}}
    )
    return policy, path


def test_a_team_template_is_used(db: Database, tmp_path: Path, output_dir: Path) -> None:
    policy, path = team_template(
        tmp_path,
        "# {{ incident.ref }} review: {{ incident.title | inline }}\n\n"
        "TTA {{ metrics.time_to_acknowledge.value }}, {{ timeline_count }} events\n"
        "{% for day in timeline %}{% for e in day.entries %}"
        "* {{ day.date }} {{ e.time }} {{ e.who }}: {{ e.text | item }}\n"
        "{% endfor %}{% endfor %}",
        output_dir,
    )
    incident_id = declare(db, policy)
    with freeze_time(T0 + timedelta(minutes=3)), db.transaction() as session:
        core.acknowledge_incident(session, policy, incident_id, actor="U02BOB")
    postmortem = generate(db, policy, incident_id)
    assert postmortem.template == str(path)
    assert postmortem.template_error is None
    assert postmortem.markdown == (
        "# INC-1 review: Search is slow\n\n"
        "TTA 3m, 2 events\n"
        "* 2026-03-04 02:55 @U01ALICE: INC-1 declared as SEV3: Search is slow\n"
        "* 2026-03-04 02:58 @U02BOB: INC-1 acknowledged\n"
    )


def test_a_team_template_can_replace_one_block_of_the_built_in_one(
    db: Database, tmp_path: Path, output_dir: Path
) -> None:
    policy, _ = team_template(
        tmp_path,
        '{% extends "firebreak/postmortem.md.j2" %}\n'
        "{% block lucky %}\n## Near misses\n\n- *What almost went wrong?*\n{% endblock %}\n",
        output_dir,
    )
    markdown = generate(db, policy, declare(db, policy)).markdown
    assert "## Near misses\n\n- *What almost went wrong?*\n" in markdown
    assert "## Where we got lucky" not in markdown
    assert "## Timeline" in markdown and "## Action items" in markdown


@pytest.mark.parametrize(
    ("template", "line", "message"),
    [
        ("# {{ incident.ref }}\n\n{% if incident.title %}\nno endif\n", 4, "syntax error: "),
        ("# {{ incident.ref }}\n{{ incident.titel }}\n", 2, "undefined: "),
        ("# {{ incident.ref }}\n{{ owner }}\n", 2, "undefined: 'owner' is undefined"),
        ("a\nb\n{{ version / 0 }}\n", 3, "ZeroDivisionError: division by zero"),
        ("a\n{{ incident.__class__.__mro__ }}\n", 2, "not allowed in a template: "),
        ("a\n\n{% include 'header.md.j2' %}\n", 3, "template 'header.md.j2' not found"),
    ],
)
def test_a_broken_team_template_falls_back_to_the_built_in_one(
    db: Database,
    tmp_path: Path,
    output_dir: Path,
    caplog: pytest.LogCaptureFixture,
    template: str,
    line: int,
    message: str,
) -> None:
    policy, path = team_template(tmp_path, template, output_dir)
    incident_id = declare(db, policy)
    with caplog.at_level(logging.WARNING, logger="bot.postmortem"):
        postmortem = generate(db, policy, incident_id)

    assert postmortem.template == "default"
    assert postmortem.template_error is not None
    assert postmortem.template_error.startswith(f"{path}:{line}: {message}")
    assert postmortem.template_error in caplog.text
    assert postmortem.markdown.startswith("# INC-1: Search is slow\n")
    assert "## Timeline" in postmortem.markdown
    with db.transaction() as session:
        [event] = [
            e
            for e in core.timeline(session, incident_id)
            if e.kind == EventKind.POSTMORTEM_GENERATED
        ]
    assert event.data["template_error"] == postmortem.template_error


@pytest.mark.parametrize(
    ("template", "line", "message"),
    [
        (  # 10^10 turns of an empty loop: minutes of CPU holding the incident lock
            "# {{ incident.ref }}\n"
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
            2,
            "too costly: used more than 1 s of CPU without finishing (a loop that never ends?)",
        ),
        (
            "# {{ incident.ref }}\n{{ 'x' * 10**10 }}\n",
            2,
            "too costly: '*' would build 10,000,000,000 characters or items",
        ),
        ("a\n\n{{ 7 ** 1000000000 }}\n", 3, "too costly: '**' would build a number of more than"),
        (  # a string doubled 30 times: a gigabyte
            "{% set s = namespace(v='xx') %}\n{% for i in range(30) %}\n"
            "{% set s.v = s.v ~ s.v %}\n{% endfor %}{{ s.v | length }}\n",
            3,
            "too costly: built a value of more than 5,000,000 characters or items",
        ),
        (
            "a\n{% for i in range(100000) %}{{ incident.title * 100 }}\n{% endfor %}\n",
            None,  # the draft as a whole
            "too costly: wrote more than 5,000,000 characters",
        ),
    ],
    ids=["endless-loop", "huge-string", "huge-power", "doubling", "huge-output"],
)
def test_a_team_template_too_costly_to_render_falls_back_within_its_limits(
    db: Database,
    tmp_path: Path,
    output_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    template: str,
    line: int | None,
    message: str,
) -> None:
    """A template is code a team wrote: one that never ends, or builds gigabytes, costs its
    draft (the built-in template is used, the error names its line), never the process or the
    incident lock held while it renders (on SQLite, every writer waited for it)."""
    monkeypatch.setattr(bounds, "TIME_LIMIT", 1.0)
    policy, path = team_template(tmp_path, template, output_dir)
    postmortem = generate(db, policy, declare(db, policy))
    assert postmortem.template == "default"
    assert postmortem.template_error is not None
    where = f"{path}:{line}" if line else f"{path}"
    assert postmortem.template_error.startswith(f"{where}: {message}")
    assert postmortem.markdown.startswith("# INC-1: Search is slow\n")


def test_a_missing_team_template_is_reported(
    db: Database, tmp_path: Path, output_dir: Path
) -> None:
    policy = policy_from_dict(
        {"postmortem": {"template_dir": str(tmp_path / "nowhere"), "output_dir": str(output_dir)}}
    )
    postmortem = generate(db, policy, declare(db, policy))
    assert postmortem.template == "default"
    assert postmortem.template_error == (
        f"{tmp_path / 'nowhere' / 'postmortem.md.j2'}: template not found; create it or unset "
        "[postmortem] template_dir in the policy file"
    )


# --------------------------------------------------------------------------------------------
# A long incident


def test_a_ten_thousand_event_incident_is_rendered_whole(db: Database, team_policy: Policy) -> None:
    incident_id = declare(db, team_policy)
    start = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
    rows: list[dict[str, object]] = [
        {
            "incident_id": incident_id,
            "occurred_at": start + timedelta(seconds=17 * i),
            "recorded_at": start + timedelta(seconds=17 * i),
            "kind": EventKind.MESSAGE if i % 3 else EventKind.NOTE,
            "actor_id": f"U{i % 40:04d}",
            "text": f"entry {i}: <@U{(i + 1) % 40:04d}> checked shard {i % 97} &amp; moved on",
            "data": {},
            "source_url": f"https://example.slack.com/archives/C1/p{i:010d}" if i % 3 else None,
            "source_ref": None,
            "idempotency_key": f"bulk:{i}",
        }
        for i in range(10_000)
    ]
    with db.transaction() as session:
        prev = chain.previous_hash(session, incident_id)
        for row in rows:  # chained as the core would (the database refuses unhashed events)
            row["prev_hash"], row["hash"] = prev, chain.event_hash(row, prev)
            prev = str(row["hash"])
        session.execute(insert(TimelineEvent), rows)
    markdown = generate(db, team_policy, incident_id).markdown

    timeline = section(markdown, "Timeline")
    assert "10001 entries" in timeline
    assert len(re.findall(r"^- \*\*\d\d:\d\d\*\* ", timeline, re.M)) == 10_001
    assert "@U0000 — note: entry 0: @U0001 checked shard 0 & moved on\n" in timeline
    assert "entry 9999: @U0000 checked shard 8 & moved on\n" in timeline
    assert "### 2026-03-05" in timeline  # 10,000 entries 17 s apart run into the next day
    assert section(markdown, "Responders and roles").count("\n| @U00") == 40


def _heading(markdown: str) -> str:
    """The text a reader sees in the draft's first heading (rendered as CommonMark)."""
    rendered = MarkdownIt("commonmark").render(markdown)
    found = re.search(r"<h1>(.*?)</h1>", rendered, re.DOTALL)
    assert found is not None
    return html.unescape(found.group(1))


def test_a_runbook_steps_own_markup_is_shown_as_written_in_the_timeline(
    db: Database, team_policy: Policy
) -> None:
    """A step whose text holds a literal ``<@U…>`` or ``<!here>`` (a runbook quoting Slack
    syntax) is shown as written in the draft's timeline, as in Slack; the person the step was
    assigned to is still named. Before, the step's words became mentions and a name lookup."""
    looked_up: list[str] = []

    class Names(Directory):
        def user(self, user_id: str) -> str | None:
            looked_up.append(user_id)
            return super().user(user_id)

    incident_id = declare(db, team_policy)
    runbook = parse_runbook(
        "# Page the team\n\n- [ ] Post <!here> and ping <@U0QUOTED>\n", runbook_id="page"
    )
    with freeze_time(T0), db.transaction() as session:
        run_id = progress.start_run(session, team_policy, incident_id, runbook, actor=BOB).run.id
        progress.update_step(session, team_policy, run_id, 0, "assign", actor=BOB, assignee=BOB)
    with freeze_time(CLOSED_AT), db.transaction() as session:
        draft = generate_postmortem(
            session, team_policy, incident_id, actor=FRANK, key="k", names=Names()
        )
    timeline = section(draft.markdown, "Timeline")
    assert "assigned to @Bob Okafor" in timeline
    assert "@here" not in timeline and "U0QUOTED" in timeline
    assert "U0QUOTED" not in looked_up
    assert "Post \\<!here> and ping <@U0QUOTED>" in timeline  # as written, in Markdown


def test_the_runbook_table_names_who_marked_a_step_not_whom_it_was_assigned_to(
    db: Database, team_policy: Policy
) -> None:
    """Bob assigned step 1 to Dan, then marked it done himself; he skipped step 2, assigned
    to Erin. The table says what the timeline says: Bob did both. Dan and Erin, who never
    acted, are not made responders by it."""
    incident_id = declare(db, team_policy)
    runbook = parse_runbook(
        "# Roll back\n\n- [ ] Pause deploys\n- [ ] Confirm timing\n", runbook_id="rb"
    )
    with freeze_time(T0), db.transaction() as session:
        run_id = progress.start_run(session, team_policy, incident_id, runbook, actor=BOB).run.id
        for index, person in ((0, DAN), (1, ERIN)):
            progress.update_step(
                session, team_policy, run_id, index, "assign", actor=BOB, assignee=person
            )
        progress.update_step(session, team_policy, run_id, 0, "done", actor=BOB)
        progress.update_step(session, team_policy, run_id, 1, "skip", actor=BOB)
    with freeze_time(CLOSED_AT), db.transaction() as session:
        draft = generate_postmortem(
            session, team_policy, incident_id, actor=FRANK, key="k", names=Directory()
        )
    table = section(draft.markdown, "Runbooks used")
    assert "| 1 | Pause deploys | done | @Bob Okafor |" in table
    assert "| 2 | Confirm timing | skipped | @Bob Okafor |" in table
    responders = section(draft.markdown, "Responders and roles")
    assert "Dan" not in responders and "Erin" not in responders


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("# {{ incident.ref }\n", ":1: syntax error: unexpected '}'"),
        ("# ok\n{{ incident.ref | nosuch }}\n", ":2: syntax error: No filter named 'nosuch'."),
        ("# \xe9t\xe9\n".encode("latin-1"), ": not UTF-8 text (invalid continuation byte"),
    ],
    ids=["syntax", "unknown-filter", "latin-1"],
)
def test_policy_check_refuses_a_team_template_that_does_not_compile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], template: str | bytes, message: str
) -> None:
    """Found when the policy is checked (exit 2, the file and line), not at the first close,
    as a warning pasted into the incident channel."""
    directory = tmp_path / "templates"
    directory.mkdir()
    path = directory / "postmortem.md.j2"
    if isinstance(template, bytes):
        path.write_bytes(template)
    else:
        path.write_text(template, encoding="utf-8")
    toml = tmp_path / "firebreak.toml"
    toml.write_text('[postmortem]\ntemplate_dir = "templates"\n')
    assert main(["--policy", str(toml), "policy", "check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"firebreak: {path}{message}")
    assert "Traceback" not in err
    path.write_text("# {{ incident.ref }}\n", encoding="utf-8")
    assert main(["--policy", str(toml), "policy", "check"]) == 0
