"""Slack markup becomes text a reader outside Slack understands, and Markdown keeps its shape."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from bot.markup import (
    escape_block,
    escape_inline,
    escape_link_url,
    escape_table_cell,
    slack_to_markdown,
    unescape_entities,
)


class Names:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def user(self, user_id: str) -> str | None:
        self.asked.append(user_id)
        return {"U123": "Alice Ng", "U456": "bob"}.get(user_id)

    def channel(self, channel_id: str) -> str | None:
        self.asked.append(channel_id)
        return {"C123": "payments-oncall"}.get(channel_id)


@pytest.mark.parametrize(
    ("slack", "expected"),
    [
        ("ping <@U123>", "ping @Alice Ng"),
        ("ping <@U123|alice>", "ping @Alice Ng"),
        ("ping <@U999|old.name>", "ping @old.name"),
        ("ping <@U999>", "ping @U999"),
        ("see <#C123>", "see #payments-oncall"),
        ("see <#C777|general>", "see #general"),
        ("see <#C777>", "see #C777"),
        ("<!here> and <!channel> and <!everyone>", "@here and @channel and @everyone"),
        ("<!here|here> look", "@here look"),
        ("paging <!subteam^S0SRE|@sre-oncall>", "paging @sre-oncall"),
        ("paging <!subteam^S0SRE>", "paging @S0SRE"),
        ("<!date^1392734382^{date_pretty}|Feb 18th, 2014>", "Feb 18th, 2014"),
        ("<!date^1392734382^{date_pretty}>", "2014-02-18 14:39 UTC"),
        # Past the year 9999: the stamp as sent (a postmortem is never lost over a date).
        ("valid until <!date^253402300800^{date}>", "valid until 253402300800"),
        ("<!date^99999999999999999999^{date}>", "99999999999999999999"),
        (
            "<https://grafana.example.com/d/1|dashboard>",
            "[dashboard](https://grafana.example.com/d/1)",
        ),
        ("<https://example.com/a>", "https://example.com/a"),
        ("<https://example.com/a|https://example.com/a>", "https://example.com/a"),
        ("<https://x.example/?a=1&amp;b=2|A &amp; B>", "[A & B](https://x.example/?a=1&b=2)"),
        (
            "<https://x.example/(1) a|[draft] notes>",
            r"[\[draft\] notes](https://x.example/%281%29%20a)",
        ),
        ("<mailto:sre@example.com|mail SRE>", "[mail SRE](mailto:sre@example.com)"),
        ("a &amp; b &lt;c&gt;", "a & b <c>"),
    ],
)
def test_slack_markup_becomes_readable(slack: str, expected: str) -> None:
    assert slack_to_markdown(slack, Names()) == expected


def test_without_names_ids_are_shown_readably() -> None:
    assert slack_to_markdown("<@U123> in <#C123>") == "@U123 in #C123"


def test_entities_are_unescaped_once_and_after_tokens() -> None:
    names = Names()
    # Someone typed "<@U123>" literally: Slack escaped it, so it is text, not a mention.
    assert slack_to_markdown("type &lt;@U123&gt; to mention", names) == "type <@U123> to mention"
    assert names.asked == []
    # Someone typed "&lt;": Slack sent "&amp;lt;", which must not become "<".
    assert slack_to_markdown("write &amp;lt; for <", names) == "write &lt; for <"
    assert unescape_entities("&amp;amp;") == "&amp;"


def test_angle_brackets_that_are_not_slack_markup_are_kept() -> None:
    assert slack_to_markdown("latency <p99> was high") == "latency <p99> was high"


def test_a_multi_line_slack_code_block_becomes_a_fenced_block() -> None:
    text = "logs: ```ERROR a\nERROR b``` on every pod"
    assert slack_to_markdown(text) == "logs: \n```\nERROR a\nERROR b\n```\n on every pod"
    assert slack_to_markdown("run ```kubectl get pods``` now") == "run ```kubectl get pods``` now"
    html = MarkdownIt("commonmark").render(slack_to_markdown("```first line\nsecond```"))
    assert "<pre><code>first line\nsecond\n</code></pre>" in html


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@given(st.text(alphabet=st.characters(blacklist_characters="`", blacklist_categories=["Cs"])))
def test_any_text_slack_escaped_comes_back_exactly(text: str) -> None:
    """Nothing is lost or changed but the backslashes that keep Markdown's syntax literal."""
    markdown = slack_to_markdown(_slack_escape(text))
    assert re.sub(r"\\([\\\[\]*_~])", r"\1", markdown) == text


def _cells(markdown: str) -> list[list[str]]:
    """The cells of each row of the first table, as a GFM renderer sees them."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    rows: list[list[str]] = []
    for token in tokens:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows:
            rows[-1].append(token.content)
    return rows


def test_table_cells_keep_the_row_in_shape() -> None:
    text = "alert on pool > 80% | page on-call\nthen <b>celebrate</b> `a|b`"
    table = (
        f"| # | Action | Owner |\n| --- | --- | --- |\n| 1 | {escape_table_cell(text)} | @dan |\n"
    )
    rows = _cells(table)
    assert len(rows) == 2
    assert len(rows[1]) == 3
    assert rows[1][2] == "@dan"
    html = MarkdownIt("commonmark").enable("table").render(table)
    assert "| page on-call" in html
    assert "&lt;b&gt;celebrate&lt;/b&gt;" in html
    assert "<code>a|b</code>" in html


def test_block_text_shows_html_as_written_but_leaves_code_alone() -> None:
    text = "the <div> stays and <!-- this --> shows\n```\n<div>code</div>\n```\nand `<b>`"
    escaped = escape_block(text)
    html = MarkdownIt("commonmark").render(escaped)
    assert "the &lt;div&gt; stays and &lt;!-- this --&gt; shows" in html
    assert "<pre><code>&lt;div&gt;code&lt;/div&gt;\n</code></pre>" in html
    assert "<code>&lt;b&gt;</code>" in html
    assert escape_block("a < b and 3<4") == "a < b and 3<4"


def test_inline_text_is_one_line() -> None:
    assert escape_inline("Checkout\n  down | <script>") == "Checkout down | \\<script>"


def test_link_urls_cannot_end_the_link_early() -> None:
    assert escape_link_url("https://x.example/a b)c<d>") == "https://x.example/a%20b%29c%3Cd%3E"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Output:\n```\nCrashLoopBackOff", "Output:\n```\nCrashLoopBackOff\n```"),
        ("~~~~\nx\n~~~", "~~~~\nx\n~~~\n~~~~"),
        ("```\ncode\n```", "```\ncode\n```"),
        ("inline ```x``` code", "inline ```x``` code"),
    ],
    ids=["open-backticks", "open-tildes", "closed", "inline"],
)
def test_block_text_never_leaves_a_code_fence_open(text: str, expected: str) -> None:
    assert escape_block(text) == expected


def test_only_web_and_mail_addresses_become_links_in_markdown() -> None:
    """A draft is pasted into wikis whose Markdown does not clean links: a ``javascript:`` or
    ``data:`` target from an integration's message is shown as text, never a link."""
    text = (
        "<javascript:alert(document.cookie)|Open runbook> "
        "<data:text/html;base64,PHNjcmlwdD4=|Dashboard> <https://grafana.example/d/1|Grafana> "
        "<mailto:sre@bank.example|SRE>"
    )
    markdown = slack_to_markdown(text)
    html = MarkdownIt("commonmark").render(markdown)
    assert re.findall(r'href="([^"]*)"', html) == [
        "https://grafana.example/d/1",
        "mailto:sre@bank.example",
    ]
    assert "Open runbook (javascript:alert(document.cookie))" in html
    assert "Dashboard (data:text/html;base64,PHNjcmlwdD4=)" in html
