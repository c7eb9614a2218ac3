"""Runbooks as teams really write them, from the second probe: what a responder sees in Slack and
what ``firebreak runbooks lint`` says about them. Commands must reach Slack whole (never cut in
the middle of a line or at the end of a block), every action section must be a step, and lint
must not cry wolf."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.runbooks.catalog import RunbookCatalog
from bot.runbooks.lint import lint_paths
from bot.runbooks.parser import Runbook, parse_runbook
from bot.runbooks.progress import DONE, IN_PROGRESS, SKIPPED, StepView
from bot.slack.limits import SECTION_TEXT, message_errors
from bot.slack.runbook_messages import (
    markdown_to_mrkdwn,
    mrkdwn_sections,
    render_run_message,
    render_runbook_pages,
)
from bot.slack.runbook_messages.fit import SLACK_CHECKS
from tests.conftest import Run
from tests.runbooks.test_lint_cli import write
from tests.slack.test_runbook_messages import make_view

CUT = "too long for Slack"


def findings(path: Path) -> list[str]:
    """Lint's lines for one file, as ``name:line: level: message``."""
    report = lint_paths([path], checks=SLACK_CHECKS)
    return [f"{Path(m.path).name}:{m.line}: {m.level}: {m.message}" for m in report.messages]


def page_sections(runbook: Runbook, steps_per_page: int = 10) -> list[str]:
    """The section texts of every page the bot would post, each page checked against Slack."""
    texts = []
    for page in render_runbook_pages(runbook, steps_per_page=steps_per_page):
        assert message_errors(page.text, page.blocks) == []
        texts += [b["text"]["text"] for b in page.blocks if b["type"] == "section"]
    assert all(len(t) <= SECTION_TEXT for t in texts)
    return texts


def code_blocks(texts: list[str]) -> list[str]:
    """The code blocks of section texts as Slack shows them (and a responder copies them)."""
    found = [m for t in texts for m in re.findall(r"```\n(.*?)\n```", t, re.DOTALL)]
    return [html.unescape(code) for code in found]


# -- 1. a code block split across sections is shown whole --------------------------------------

MANIFEST = "kubectl apply -f - <<'EOF'\n" + (
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: default-deny\n"
    "  namespace: payments\nspec:\n  podSelector: {}\n  ingress:\n"
    + "".join(
        "  - from:\n    - namespaceSelector: "
        f"{{matchLabels: {{team: team-{n:02}, env: production}}}}\n"
        for n in range(45)
    )
    + "EOF"
)
MANIFEST_RUNBOOK = f"""\
# Restore the default network policy

## Mitigation

Apply the default policy again:

```yaml
{MANIFEST}
```
"""


def test_a_code_block_split_across_two_sections_is_shown_whole_and_lint_is_silent(
    tmp_path: Path,
) -> None:
    assert 3_900 < len(MANIFEST) < SECTION_TEXT * 2 - 100
    runbook = parse_runbook(MANIFEST_RUNBOOK, runbook_id="netpol")

    texts = page_sections(runbook)
    step = [t for t in texts if "kubectl apply" in t or "team-44" in t]

    assert len(step) == 2
    assert not any(CUT in t for t in texts)
    # the two halves, closed and reopened at a line end, are the manifest byte for byte
    assert "\n".join(code_blocks(step)) == MANIFEST
    assert step[-1].endswith("team: team-44, env: production}}\nEOF\n```")
    assert findings(write(tmp_path, "netpol.md", MANIFEST_RUNBOOK)) == []


# -- 2. a command line is never split between two Slack code blocks -----------------------------

COMMANDS = [
    f'ssh edge-{n:03}.example.com "sudo systemctl reload haproxy && curl -fsS '
    f'http://127.0.0.1:8404/healthz && echo edge-{n:03} reloaded ok"'
    for n in range(60)
]


@pytest.mark.parametrize("lead", ["Reload:", "Reload every edge proxy:", "Reload them. " * 9])
def test_a_long_block_of_commands_is_split_between_lines_never_inside_a_command(
    lead: str,
) -> None:
    code = "\n".join(COMMANDS)
    markdown = f"{lead}\n\n```bash\n{code}\n```\n"

    texts = mrkdwn_sections(markdown)

    assert all(len(t) <= SECTION_TEXT for t in texts)
    blocks = code_blocks(texts)
    assert len(blocks) == len(texts) >= 3
    # each block holds whole commands: together, the commands as written
    assert "\n".join(blocks) == code
    for block in blocks:
        assert all(line in COMMANDS for line in block.split("\n"))


def test_a_step_cut_for_the_page_budget_ends_at_a_whole_command() -> None:
    code = "\n".join(COMMANDS * 4)
    runbook = parse_runbook(f"# Edge\n\n## Steps\n\n```bash\n{code}\n```\n", runbook_id="edge")

    texts = page_sections(runbook)

    assert CUT in texts[-1]
    lines = code.split("\n")
    assert all(line in lines for block in code_blocks(texts) for line in block.split("\n"))


# -- 3. one section per alert: Mitigation under each alert is a step ---------------------------

ALERTS = """\
# Payments service alerts

## {first}

### Meaning

More than 5% of payment requests fail.

### Mitigation

Roll back the last deploy:

```sh
helm rollback payments 0
```

## {second}

### Meaning

The settlement queue is growing.

### Mitigation

Scale the workers:

```sh
kubectl -n payments scale deploy/settlement-worker --replicas=12
```
"""
TRIAGE = """\
## Triage

- [ ] Open the payments dashboard
- [ ] Check the provider status page

"""


@pytest.mark.parametrize(
    ("first", "second", "triage"),
    [
        ("Alert: PaymentsHighErrorRate", "Alert: PaymentsQueueBacklog", ""),
        ("Alert: PaymentsHighErrorRate", "Alert: PaymentsQueueBacklog", TRIAGE),
        ("PaymentsHighErrorRate", "PaymentsQueueBacklog", ""),
    ],
    ids=["alert-prefix", "with-triage", "plain-names"],
)
def test_mitigation_under_each_alert_heading_is_a_step_named_after_its_alert(
    tmp_path: Path, first: str, second: str, triage: str
) -> None:
    text = ALERTS.format(first=first, second=second)
    text = text.replace("## ", triage + "## ", 1) if triage else text
    runbook = parse_runbook(text, runbook_id="payments")

    alert_steps = [s for s in runbook.steps if "Mitigation" in s.title]
    assert [s.title for s in alert_steps] == [
        "PaymentsHighErrorRate: Mitigation",
        "PaymentsQueueBacklog: Mitigation",
    ]
    assert "```sh\nhelm rollback payments 0\n```" in alert_steps[0].markdown
    assert (
        "```sh\nkubectl -n payments scale deploy/settlement-worker --replicas=12\n```"
        in alert_steps[1].markdown
    )
    assert [c.title for c in runbook.context] == [
        "PaymentsHighErrorRate: Meaning",
        "PaymentsQueueBacklog: Meaning",
    ]
    assert len(runbook.steps) == (4 if triage else 2)
    # in Slack each command is in a step of its own, with Done / Skip buttons
    page = render_runbook_pages(runbook, steps_per_page=10)[0]
    assert message_errors(page.text, page.blocks) == []
    done = [b for b in page.blocks if b["type"] == "actions"]
    assert len(done) == len(runbook.steps)
    shown = [b["text"]["text"] for b in page.blocks if b["type"] == "section"]
    step_text = next(t for t in shown if "helm rollback" in t)
    assert "*3. PaymentsHighErrorRate: Mitigation*" in step_text or (
        "*1. PaymentsHighErrorRate: Mitigation*" in step_text
    )
    assert findings(write(tmp_path, "payments.md", text)) == []


# -- 4. steps written in HTML have text ---------------------------------------------------------

HTML_STEPS = """\
# Elasticsearch cluster red

## Meaning

The cluster has unassigned primary shards.

## Mitigation

<details>
<summary>Reroute the unassigned shards</summary>
<pre>curl -XPOST 'localhost:9200/_cluster/reroute?retry_failed=true'</pre>
</details>

## Verification

<img src="https://grafana.example.com/render/d/es/health.png" alt="Cluster health should be green">

## Rollback

<!-- TODO: write the rollback -->
"""


def test_steps_written_in_html_are_not_reported_as_empty(run: Run, tmp_path: Path) -> None:
    write(tmp_path, "es-red.md", HTML_STEPS)

    code, out, _ = run("runbooks", "lint", "es-red.md")

    # only the step that holds nothing but a comment to the authors says nothing
    assert out.splitlines()[:-1] == [
        "es-red.md:18: error: step 3 ('Rollback') has no text: write what responders should "
        "do, or remove the heading"
    ]
    assert code == 1
    write(tmp_path, "es-red.md", HTML_STEPS.split("## Rollback")[0])
    code, out, _ = run("runbooks", "lint", "es-red.md")
    assert (code, out) == (0, "1 runbook checked: 0 errors, 0 warnings\n")


# -- 5. inline code holding backticks ----------------------------------------------------------


def test_inline_code_holding_backticks_is_shown_as_a_code_block_with_the_command_intact() -> None:
    text = """\
# Cron backlog

## Steps

1. Find the stuck job with ``ps -o pid,etime,cmd -p `pgrep -f backup` ``.
2. Kill it with `kill -TERM <pid>` and restart: ``systemctl restart backup@`date +%F`.service``
"""
    runbook = parse_runbook(text, runbook_id="cron")

    texts = page_sections(runbook)

    assert code_blocks(texts) == [
        "ps -o pid,etime,cmd -p `pgrep -f backup`",
        "systemctl restart backup@`date +%F`.service",
    ]
    first = next(t for t in texts if "pgrep" in t)
    assert first == (
        ":arrow_forward: *1.* Find the stuck job with\n"
        "```\nps -o pid,etime,cmd -p `pgrep -f backup`\n```"
    )
    second = next(t for t in texts if "date +%F" in t)
    assert "Kill it with `kill -TERM &lt;pid&gt;` and restart:\n```\n" in second
    # a code span without a backtick stays inline
    assert markdown_to_mrkdwn("Run `df -h` now.") == "Run `df -h` now."


# -- 6. titles with paths and globs render literally --------------------------------------------

GLOBS = """\
# Disk cleanup on build agents

## Clean `/var/log/*.gz` archives

```sh
sudo rm -f /var/log/*.gz
```

## Empty `~/.cache` and `~/.m2`

```sh
rm -rf ~/.cache/* ~/.m2/repository
```

## Remove `node_modules` in `_work` dirs

```sh
find /agent/_work -name node_modules -type d -prune -exec rm -rf {} +
```
"""


def test_step_titles_with_paths_and_globs_render_literally_in_every_state() -> None:
    now = datetime(2024, 3, 1, tzinfo=UTC)
    states = [DONE, SKIPPED, IN_PROGRESS]
    view = make_view(
        GLOBS,
        {
            i: StepView(index=i, state=states[i], updated_by="U1", updated_at=now, assignee_id="U2")
            for i in range(3)
        },
    )

    message = render_run_message(view, steps_per_page=10)

    assert message_errors(message.text, message.blocks) == []
    shown = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert shown[0].startswith(":white_check_mark: ~1. Clean `/var/log/*.gz` archives~ _done")
    assert shown[1].startswith(":fast_forward: ~2. Empty `~/.cache` and `~/.m2`~ _skipped")
    assert shown[2].startswith(
        ":hourglass_flowing_sand: *3. Remove `node_modules` in `_work` dirs*\n"
    )
    # the command itself is untouched
    assert code_blocks(shown) == [
        "find /agent/_work -name node_modules -type d -prune -exec rm -rf {} +"
    ]


# -- 7. <br> in table cells ---------------------------------------------------------------------


def test_a_line_break_in_a_table_cell_separates_the_two_lines() -> None:
    text = """\
| # | Action | Command |
|---|--------|---------|
| 1 | Freeze deploys<br>Announce in #deploys | `deployctl freeze --all` |
| 2 | Promote the replica | `patronictl failover --candidate db-2 --force` |
"""
    [table] = code_blocks([markdown_to_mrkdwn(text)])

    assert table.split("\n")[2] == (
        "1 | Freeze deploys / Announce in #deploys | deployctl freeze --all"
    )
    assert "deploysAnnounce" not in table


# -- 8. no false placeholder or reference warnings ----------------------------------------------

LOGS = """\
# Todo API latency

## Diagnosis

Look in the gateway logs for lines like [ERROR][pool] connection refused or
[WARN][tls] handshake timeout, or [2024-03-01 12:00:03][ERROR] in the worker.

```sh
kubectl logs deploy/todo-api | grep -E '\\[(ERROR|WARN)\\]'
```
"""


def test_a_todo_in_a_name_and_log_levels_in_brackets_are_not_lint_warnings(tmp_path: Path) -> None:
    assert findings(write(tmp_path, "todo-api.md", LOGS)) == []


def test_real_placeholders_and_forgotten_link_definitions_are_still_reported(
    tmp_path: Path,
) -> None:
    text = """\
# Queue full

## Mitigation

TODO: write this

- [ ] Open [the queue dashboard][grafana] and [runbook notes][1].

## Verify

TBD
"""
    assert findings(write(tmp_path, "queue.md", text)) == [
        "queue.md:5: warning: placeholder text (TODO): fill it in",
        "queue.md:7: warning: link [runbook notes][1] has no definition: add a line "
        "'[1]: https://...' or use an inline link",
        "queue.md:7: warning: link [the queue dashboard][grafana] has no definition: add a "
        "line '[grafana]: https://...' or use an inline link",
        "queue.md:11: warning: placeholder text (TODO): fill it in",
    ]


# -- 9. keywords in any script ------------------------------------------------------------------

CJK = """\
---
title: 数据库连接耗尽
services: [订单服务]
---

# 数据库连接耗尽

## 处理步骤

1. 查看当前连接数：`SELECT count(*) FROM pg_stat_activity;`
2. 终止空闲超过十分钟的连接。
"""
ACCENTED = "# Störung im Zahlungsnetzwerk\n\n## Steps\n\n- [ ] Prüfe die Verbindungen\n"
CYRILLIC = "# Сервер недоступен\n\n## Steps\n\n- [ ] Перезапустите балансировщик\n"
OTHER = "# Disk full\n\n## Steps\n\n- [ ] Free space on the volume\n"


def test_keywords_in_cjk_accented_latin_and_cyrillic_find_the_runbook() -> None:
    catalog = RunbookCatalog.of(
        parse_runbook(text, runbook_id=rid)
        for rid, text in [("cjk", CJK), ("de", ACCENTED), ("ru", CYRILLIC), ("disk", OTHER)]
    )

    assert [m.runbook.id for m in catalog.search("数据库")] == ["cjk"]
    assert [m.runbook.id for m in catalog.match(title="订单服务 数据库连接耗尽")] == ["cjk"]
    assert [m.runbook.id for m in catalog.match(title="Zahlungsnetzwerk Störung")] == ["de"]
    assert [m.runbook.id for m in catalog.search("сервер")] == ["ru"]
    assert [m.runbook.id for m in catalog.match(title="Disk full on db-1")] == ["disk"]


# -- cosmetic -----------------------------------------------------------------------------------


def test_mkdocs_attribute_lists_are_not_part_of_step_titles() -> None:
    text = "# Cache\n\n## Roll back the config { #rollback }\n\n```sh\nkubectl rollout undo x\n```"
    text += "\n\n## Verify {: .danger }\n\nHit rate back above 90%.\n"

    runbook = parse_runbook(text, runbook_id="cache")

    assert [s.title for s in runbook.steps] == ["Roll back the config", "Verify"]


def test_a_utf16_file_is_reported_as_text_to_save_as_utf8(run: Run, tmp_path: Path) -> None:
    write(tmp_path, "disk.md", "# Disk full\n\n## Mitigation\n\n- [ ] df -h\n".encode("utf-16"))

    code, out, _ = run("runbooks", "lint", "disk.md")

    assert code == 1
    assert out.splitlines()[0] == (
        "disk.md:1: error: UTF-16 text (as some Windows editors save it): save the file as UTF-8"
    )


def test_mkdocs_admonition_markers_are_not_shown_as_text() -> None:
    text = """\
# Postgres replica lag

!!! info "When this fires"
    Replication lag on a read replica is above 30 s for 5 minutes.

## Mitigation

1. Remove the lagging replica from the pool.

    !!! danger "Do not promote"
        Never promote a lagging replica: writes after the lag are lost.

    ```bash
    kubectl -n db annotate pod "$POD" pgpool/weight=0 --overwrite
    ```
"""
    runbook = parse_runbook(text, runbook_id="lag")

    assert runbook.description == "Replication lag on a read replica is above 30 s for 5 minutes."
    shown = "\n".join(page_sections(runbook))
    assert "!!!" not in shown
    assert ":warning: *Do not promote*\n" in shown
    assert markdown_to_mrkdwn("!!! DO NOT run this on the primary") == (
        "!!! DO NOT run this on the primary"
    )


# -- a step is cut only when it alone outgrows a page ----------------------------------------


def test_lint_warns_only_of_a_step_slack_cuts_even_when_it_is_the_step_to_do(
    tmp_path: Path,
) -> None:
    """Ten long steps do not fit one page at once, but each is shown whole when it is the step
    to do: no warning. A step that alone outgrows a page is cut then too: a warning at its
    line, saying what to do."""

    def step(n: int, lines: int) -> str:
        commands = "\n".join(f"kubectl -n pay-{n} drain node-{k:03} --force" for k in range(lines))
        return f"## Step {n}\n\nOn every node:\n\n```\n{commands}\n```\n"

    ten_long = "# Drain\n\n" + "\n".join(step(n, 40) for n in range(1, 11))
    assert findings(write(tmp_path, "ten.md", ten_long)) == []

    huge = "# Drain\n\n" + step(1, 5) + "\n" + step(2, 400) + "\n" + step(3, 5)
    line = huge.splitlines().index("## Step 2") + 1
    assert findings(write(tmp_path, "huge.md", huge)) == [
        f"huge.md:{line}: warning: step 2 is too long for one Slack message: even when it is "
        "the step to do, Slack shows it cut, with a pointer to this file; split it into "
        "smaller steps"
    ]
