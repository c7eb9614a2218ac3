"""A table in a runbook is shown as a monospace block whose columns line up as displayed:
Chinese, Japanese and Korean characters take two columns each."""

from __future__ import annotations

from bot.slack.runbook_messages import markdown_to_mrkdwn
from bot.slack.runbook_messages.columns import display_width

TABLE = """\
| 指标 | 阈值 |
|---|:---:|
| fallback ratio | 0.30 |
| 断流 | 15 分钟 |
"""


def test_columns_of_a_chinese_table_line_up_on_screen() -> None:
    lines = markdown_to_mrkdwn(TABLE).strip("`\n").split("\n")

    bars = {display_width(line.split("|")[0]) for line in lines if "|" in line}
    assert bars == {display_width(lines[1].split("+")[0])}  # one screen column for every row
    assert lines[0] == "指标           |   阈值"
    assert lines[3] == "断流           | 15 分钟"


def test_latin_tables_are_padded_as_before() -> None:
    table = "| Name | Count |\n|:-----|:-----:|\n| a | 1 |\n| longer | 22 |"
    assert markdown_to_mrkdwn(table) == (
        "```\nName   | Count\n-------+------\na      |   1\nlonger |   22\n```"
    )
