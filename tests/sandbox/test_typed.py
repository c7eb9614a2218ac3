"""What a person typed, escaped as Slack sends it in command and message text."""

from __future__ import annotations

import pytest

from bot.sandbox.typed import escape_typed, rich_text_elements


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("plain words", "plain words"),
        ("p99 < 5ms & rising > 2", "p99 &lt; 5ms &amp; rising &gt; 2"),
        ("a &amp; b &lt;c&gt; &ampx", "a &amp; b &lt;c&gt; &amp;ampx"),
        ("<b>bold</b> <foo|bar> <@ana>", "&lt;b&gt;bold&lt;/b&gt; &lt;foo|bar&gt; &lt;@ana&gt;"),
        (
            "ic <@U0FAKE001|ana> in <#C0FAKE01|general>",
            "ic <@U0FAKE001|ana> in <#C0FAKE01|general>",
        ),
        (
            "<@W123> <#G123> <!here> <!channel> <!everyone>",
            "<@W123> <#G123> <!here> <!channel> <!everyone>",
        ),
        (
            "<!subteam^S1|@sre> <!date^1700000000^{date}|Nov 14>",
            "<!subteam^S1|@sre> <!date^1700000000^{date}|Nov 14>",
        ),
        (
            "see <https://x.example/a?b=1&c=2|a & b> & <mailto:o@x.example>",
            "see <https://x.example/a?b=1&amp;c=2|a &amp; b> &amp; <mailto:o@x.example>",
        ),
        ("<javascript:alert(1)|x> <!nobody>", "&lt;javascript:alert(1)|x&gt; &lt;!nobody&gt;"),
    ],
)
def test_typed_text_is_escaped_except_for_the_clients_tokens(typed: str, sent: str) -> None:
    assert escape_typed(typed) == sent


def test_rich_text_carries_the_typed_characters_and_the_tokens_as_elements() -> None:
    sent = escape_typed("p99 < 5ms & <https://x.example|dash> by <@U1|ana> <!here>")
    assert rich_text_elements(sent) == [
        {"type": "text", "text": "p99 < 5ms & "},
        {"type": "link", "url": "https://x.example", "text": "dash"},
        {"type": "text", "text": " by "},
        {"type": "user", "user_id": "U1"},
        {"type": "text", "text": " "},
        {"type": "broadcast", "range": "here"},
    ]
