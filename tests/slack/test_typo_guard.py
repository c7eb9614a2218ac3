"""The typo guard: a mistyped command is never taken for an incident title."""

from __future__ import annotations

from datetime import date

import pytest

from bot.slack.commands import close_command, parse_command

TODAY = date(2026, 11, 30)


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("stauts", "status"),
        ("hlep", "help"),
        ("HLEP", "help"),
        ("updaet", "update"),
        ("reslove", "resolve"),
        ("stat", "status"),
        ("closed", "close"),
        ("sevv 2", "sev"),
        ("icc me", "ic"),
        ("stauts INC-4", "status"),
        ("rol <@U0123ABC|dana>", "role"),
    ],
)
def test_a_word_close_to_a_command_asks(text: str, suggestion: str) -> None:
    parsed = parse_command(text, today=TODAY)
    assert parsed.name == "did_you_mean"
    assert parsed.args == (suggestion,)
    assert parsed.text == text


@pytest.mark.parametrize(
    "text",
    [
        "Checkout returns 500s",
        "database",
        "outage",
        "latency",
        "payments",
        "stauts page shows errors",  # several words: a title, however it starts
        "Login broken for SSO users",
    ],
)
def test_genuine_titles_still_declare(text: str) -> None:
    parsed = parse_command(text, today=TODAY)
    assert parsed.name == "declare_title"
    assert parsed.text == text


def test_exact_commands_are_not_typos() -> None:
    assert parse_command("status", today=TODAY).name == "status"
    assert parse_command("help", today=TODAY).name == "help"
    assert close_command("status") is None


def test_after_an_incident_number_the_typo_is_named_but_never_declares() -> None:
    parsed = parse_command("INC-3 stauts", today=TODAY)
    assert parsed.name == "declare_title"
    assert parsed.incident_ref == 3
    assert parsed.extra == {"suggestion": "status"}


def test_a_swap_of_two_letters_is_one_edit_and_a_real_word_is_no_typo() -> None:
    assert close_command("stauts") == "status"
    assert close_command("hlep") == "help"
    assert close_command("outage") is None  # four edits from "update": a title, not a typo
