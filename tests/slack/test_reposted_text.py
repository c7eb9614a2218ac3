"""The one function for text Firebreak re-posts: broadcast mentions shown, never notifying."""

from __future__ import annotations

import pytest

from bot.markup import WORD_JOINER, neutralise_broadcasts

J = WORD_JOINER


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!channel> db down", f"@{J}channel db down"),
        ("<!here|here> look", f"@{J}here look"),
        ("<!everyone>", f"@{J}everyone"),
        ("ping <!subteam^S0SRE0001|@sre>", f"ping @{J}sre"),
        ("ping <!subteam^S0SRE0001>", f"ping @{J}S0SRE0001"),
        ("typed in a form: @here and @Channel", f"typed in a form: @{J}here and @{J}Channel"),
    ],
)
def test_broadcasts_are_quietened(text: str, expected: str) -> None:
    assert neutralise_broadcasts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "<@U0ANA0001> is on it",  # one person: notifies them, as the author meant
        "mail ops@here.com",
        "&lt;!channel&gt; typed as characters",
        "<!date^1392734382^{date}|Feb 18> deploy",
        "R&amp;D",
        "",
    ],
)
def test_everything_else_is_left_alone(text: str) -> None:
    assert neutralise_broadcasts(text) == text


def test_the_policy_may_allow_them() -> None:
    assert neutralise_broadcasts("<!channel> db down", allow=True) == "<!channel> db down"


def test_quietening_twice_changes_nothing_more() -> None:
    once = neutralise_broadcasts("<!channel> and @here")
    assert neutralise_broadcasts(once) == once
