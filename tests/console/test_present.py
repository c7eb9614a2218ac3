"""How the console shows what the timeline stores."""

from __future__ import annotations

from bot.console.present import slack_text


def people(user: str | None) -> str:
    return {"U2": "Rita"}.get(user or "", user or "")


def test_slack_markup_is_made_readable_and_anything_else_is_shown_as_written() -> None:
    """Alert text is stored as the sender wrote it: ``<b>`` in a title is not Slack's and must
    not vanish; mentions, links and broadcasts (Slack's) read as names and labels."""
    assert slack_text("CPU high & <b>hot</b> on <x>", people) == "CPU high & <b>hot</b> on <x>"
    assert (
        slack_text(
            "<@U2> see <https://grafana.example.com/d/1|dashboard>, <#C1|inc-1> and <!here>", people
        )
        == "@Rita see dashboard, #inc-1 and @here"
    )
    assert slack_text("R&amp;D &lt;liaison&gt;: <@U2>", people) == "R&D <liaison>: @Rita"
    assert slack_text("mail <mailto:a@example.com|a@example.com>", people) == "mail a@example.com"
