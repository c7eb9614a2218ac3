"""A runbook's description comes from its overview, not from the first item of a list of the
alerts it answers."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

# Excerpt of docs/dev-ops/observability/planner-alert-runbook.md in a public agent-app repository.
PLANNER = """\
# Planner 告警处置手册（Runbook）

## 2. 告警定义

### 2.1 绝对值告警（Spike）

- `PlannerFallbackSpikeWarningStaging`：预发 5 分钟 fallback 增量 > 10 且持续 10 分钟。
- `PlannerFallbackSpikeWarningProd`：生产 5 分钟 fallback 增量 > 20 且持续 5 分钟。

## 4. 5 分钟内排障步骤

1. 在监控面板确认 `route/fallback/ratio` 曲线是否真实异常。
2. 检查最近 30 分钟 `ROUTING_DECIDED` 日志中 `fallbackReason/sourceType/plannerAttempts` 分布。
"""


def test_a_list_of_alert_definitions_is_not_the_description() -> None:
    runbook = parse_runbook(PLANNER, runbook_id="planner")

    assert runbook.description == ""
    assert [c.title for c in runbook.context] == ["2. 告警定义"]


def test_an_overview_written_as_a_list_still_describes_the_runbook() -> None:
    text = "# Redis\n\n## Overview\n\n- Redis is out of memory.\n\n## Mitigation\n\n1. Flush.\n"
    assert parse_runbook(text, runbook_id="redis").description == "Redis is out of memory."


def test_a_paragraph_of_any_context_describes_the_runbook() -> None:
    text = "# Redis\n\n## Impact\n\nWrites fail.\n\n## Mitigation\n\n1. Flush.\n"
    assert parse_runbook(text, runbook_id="redis").description == "Writes fail."
