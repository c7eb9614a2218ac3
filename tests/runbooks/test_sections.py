"""Where a step stands in the runbook: the section a responder is in stays visible when its
steps come from a numbered list or from the commands under a sub-heading; a warning written
before a section's numbered sub-sections stays with the step it guards; Chinese and Japanese
section names are understood like English ones."""

from __future__ import annotations

from bot.runbooks.catalog import RunbookCatalog
from bot.runbooks.parser import parse_runbook
from bot.slack.runbook_messages import render_runbook_pages

LISTS = """\
# Clock not synchronising

## Meaning

The node's clock drifts.

## Diagnosis

1. Check the time service is running: `systemctl status chronyd`
2. Compare the offset: `chronyc tracking`

## Mitigation

1. Restart the time service: `systemctl restart chronyd`
2. Watch the offset come back under 10 ms
"""

COMMANDS = """\
# Long running transactions

## Mitigation

### Cancelling the query

Find the backend first:

```
select pid, query from pg_stat_activity where state <> 'idle';
```

Then cancel it:

```
select pg_cancel_backend(<pid>);
```

### Resolving the client

Look the client up:

```
show clients;
```
"""


def page_text(runbook_text: str) -> str:
    runbook = parse_runbook(runbook_text, runbook_id="r")
    [page] = render_runbook_pages(runbook, steps_per_page=20)
    return "\n".join(b["text"]["text"] for b in page.blocks if b["type"] == "section")


def test_the_section_of_numbered_steps_is_named_where_it_starts() -> None:
    runbook = parse_runbook(LISTS, runbook_id="clock")
    assert [(s.title.split(":")[0], s.section) for s in runbook.steps] == [
        ("Check the time service is running", "Diagnosis"),
        ("Compare the offset", "Diagnosis"),
        ("Restart the time service", "Mitigation"),
        ("Watch the offset come back under 10 ms", "Mitigation"),
    ]
    text = page_text(LISTS)
    assert text.count("*Diagnosis*") == 1 and text.count("*Mitigation*") == 1
    assert text.index("*Diagnosis*") < text.index("*1.*") < text.index("*Mitigation*")
    assert text.index("*Mitigation*") < text.index("*3.*")


def test_commands_split_from_a_sub_heading_keep_its_name() -> None:
    runbook = parse_runbook(COMMANDS, runbook_id="txn")
    cancelling = "Mitigation › Cancelling the query"  # the chapter it is in, too
    assert [(s.title, s.section) for s in runbook.steps] == [
        ("Find the backend first", cancelling),
        ("Cancelling the query: Then cancel it", cancelling),  # a label alone
        ("Resolving the client", "Mitigation"),  # titled with it: not shown twice
    ]
    text = page_text(COMMANDS)
    assert text.count(f"*{cancelling}*") == 1 and "*Mitigation*\n" in text
    assert "*3. Resolving the client*" in text


def test_one_section_for_every_step_is_not_repeated() -> None:
    runbook = parse_runbook(
        "# Disk full\n\n## Steps\n\n1. Check df\n2. Free space\n", runbook_id="d"
    )
    assert [s.section for s in runbook.steps] == ["", ""]
    assert "section" not in runbook.snapshot()["steps"][0]


def test_a_warning_before_numbered_sub_sections_is_read_with_the_first_of_them() -> None:
    text = """\
# Replica handling

## Overview

Replicas serve reads.

## Removing an unhealthy replica from the cluster

**IMPORTANT:** make sure the workload is drained from the replica first.

### Step 1 - Stop the service on the node

```
sudo systemctl stop patroni
```

### Step 2 - Shut the node down

```
gcloud compute instances stop "$INSTANCE"
```
"""
    runbook = parse_runbook(text, runbook_id="replica")
    assert [c.title for c in runbook.context] == ["Overview"]
    assert runbook.steps[0].title == "Stop the service on the node"
    assert runbook.steps[0].markdown.startswith("**IMPORTANT:** make sure the workload")


def test_preparation_is_a_step_and_a_pre_requisite_is_context() -> None:
    text = """\
# Draining a node

## Pre-requisite

Access to the bastion.

## Preparation

Make sure the node is not the primary.

## Drain

1. Cordon it
2. Drain it
"""
    runbook = parse_runbook(text, runbook_id="drain")
    assert [c.title for c in runbook.context] == ["Pre-requisite"]
    assert runbook.steps[0].title == "Preparation"


def test_chinese_and_japanese_section_names_are_understood() -> None:
    chinese = """\
# KubePodNotReady

## 含义

Pod 处于未就绪状态。

## 影响

1. 服务性能下降，甚至不可用。
2. Pod 不能关联到 Service。

## 诊断

- 检查 Pod 的 events：`kubectl describe pod $POD`

## 缓解

阅读应用的相关文档。
"""
    runbook = parse_runbook(chinese, runbook_id="zh")
    assert [c.title for c in runbook.context] == ["含义", "影响"]
    assert [s.section or s.title for s in runbook.steps] == ["诊断", "缓解"]
    japanese = (
        "# ディスク\n\n## 概要\n\nディスクが一杯です。\n\n## 対応手順\n\n1. 確認する\n2. 削除する\n"
    )
    runbook = parse_runbook(japanese, runbook_id="ja")
    assert [c.title for c in runbook.context] == ["概要"]
    assert len(runbook.steps) == 2


def test_a_file_with_a_section_per_alert_matches_each_alert(tmp_path: object) -> None:
    """``## Alert: X`` (the documented layout) makes the file a runbook for X."""
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "payments.md").write_text(
        "# Payments alerts\n\n## Alert: PaymentsHighErrorRate\n\n### Mitigation\n\n1. Roll back\n"
        "\n## Alert: PaymentsQueueBacklog\n\n### Mitigation\n\n1. Scale consumers\n",
        encoding="utf-8",
    )
    (root / "other.md").write_text("# Other\n\n1. Look at payments\n", encoding="utf-8")
    catalog = RunbookCatalog.load([root])
    [best] = catalog.match(alerts=["PaymentsQueueBacklog"], limit=1)
    assert best.runbook.id == "payments"
    assert "alert PaymentsQueueBacklog (its heading)" in best.reasons


def test_a_bold_first_line_is_the_title_of_its_item_and_a_heading_colon_is_dropped() -> None:
    text = """\
# Clock skew

## Diagnosis

1. **Check the time synchronisation service**
   Most nodes use `chronyd`:

   ```bash
   systemctl status chronyd
   ```

2. **Restart it** if it is not running.

## Latency

#### Slow Read Requests:

Cluster scoped:

```
histogram_quantile(0.99, sum by (le) (rate(apiserver_request_duration_seconds_bucket[5m])))
```

Namespace scoped:

```
histogram_quantile(0.99, sum by (le, namespace) (rate(x[5m])))
```
"""
    runbook = parse_runbook(text, runbook_id="skew")
    assert [(s.title, s.section) for s in runbook.steps] == [
        ("Check the time synchronisation service", "Diagnosis"),
        ("Restart it if it is not running.", "Diagnosis"),
        ("Slow Read Requests: Cluster scoped", "Latency › Slow Read Requests"),
        ("Slow Read Requests: Namespace scoped", "Latency › Slow Read Requests"),
    ]
