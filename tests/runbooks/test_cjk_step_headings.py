"""Chinese and Japanese headings numbered as steps (第一步, 步骤2, ステップ1, 手順１) are steps
whatever their words, titled without the number, as "Step 1: ..." is."""

from __future__ import annotations

import pytest

from bot.runbooks.parser import parse_runbook

# Excerpt of xiangyuzeng/luckin-grafana-alerts-documentation
# alert-handbooks/ALR-087_default-exceptions-20.md @5596b0af.
IMMEDIATE_RESPONSE = """\
# 【默认策略】异常数量超过20个

## 告警描述

异常数量超过20个。

## 立即响应

### 第一步: 评估告警影响

**检查此告警对业务的影响:**

- 先观察5-10分钟，看告警是否自动恢复

### 第二步: 初步诊断

```
1. 检查告警详细信息
2. 查看相关Grafana仪表板
```
"""


def test_a_chinese_step_that_assesses_the_alert_is_a_step() -> None:
    runbook = parse_runbook(IMMEDIATE_RESPONSE, runbook_id="alr-087")

    assert [s.title for s in runbook.steps] == ["评估告警影响", "初步诊断"]
    assert "先观察5-10分钟" in runbook.steps[0].markdown
    assert [c.title for c in runbook.context] == ["告警描述"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("ステップ1: 影響の確認", "ステップ2: 初期診断"),
        ("手順１：影響の確認", "手順２：初期診断"),
        ("步骤1 影響の確認", "步骤 2 初期診断"),
        ("第 1 步：影響の確認", "第二步、初期診断"),
        ("Step 1: 影響の確認", "Step 2: 初期診断"),
    ],
    ids=["suteppu", "tejun-full-width", "buzhou", "di-bu-numerals", "step"],
)
def test_step_numbers_in_any_script_make_steps(first: str, second: str) -> None:
    text = f"# アラート\n\n## 対応\n\n### {first}\n\n影響範囲。\n\n### {second}\n\nログ。\n"
    runbook = parse_runbook(text, runbook_id="x")

    assert [s.title for s in runbook.steps] == ["影響の確認", "初期診断"]
    assert runbook.context == ()


@pytest.mark.parametrize(
    ("headings", "context"),
    [
        # Japanese compounds end with their head: "user impact check" is a check.
        (
            ["1. サービス状態確認", "2. ユーザー影響確認", "3. 監視アラート確認", "4. APIの再起動"],
            [],
        ),
        # Chinese puts the verb first: "confirm the user impact" is a confirmation.
        (["1. 检查服务", "2. 确认用户影响", "3. 重启服务"], []),
        # A heading whose head is a context word stays context.
        (["告警影响", "1. 重启服务"], ["告警影响"]),
    ],
    ids=["japanese-head-last", "chinese-verb-first", "chinese-impact"],
)
def test_a_numbered_check_of_the_impact_is_a_step(headings: list[str], context: list[str]) -> None:
    """Numbered steps that check the impact or the alerts (影響確認, 确认用户影响) were read as
    background for their words "impact" and "alert": shown above step 1, with no buttons."""
    text = "# API障害\n\n## 初期対応\n\n" + "".join(
        f"### {h}\n\n```bash\nkubectl get pods\n```\n\n" for h in headings
    )
    runbook = parse_runbook(text, runbook_id="api")
    steps = [h.split(". ", 1)[-1] for h in headings if h not in context]
    assert [s.title for s in runbook.steps] == steps
    assert [c.title for c in runbook.context] == context
