"""The command word as people type it: a lone word in quotes (straight, curly, backticks),
with punctuation after it, a zero-width space or full-width letters is the command it spells,
never an incident title. A title that merely starts with such a word is still a title."""

from __future__ import annotations

from datetime import date

import pytest

from bot.db import INTEGER_MAX, whole_number
from bot.slack.commands import command_word, parse_command

TODAY = date(2026, 11, 30)


@pytest.mark.parametrize(
    ("typed", "command"),
    [
        ("\u201cstatus\u201d", "status"),  # “status”, as a phone or a word processor types it
        ("'status'", "status"),
        ('"status"', "status"),
        ("`status`", "status"),
        ("\u2018status\u2019", "status"),
        ("\u00abstatus\u00bb", "status"),
        ("status.", "status"),
        ("status!", "status"),
        ("status,", "status"),
        ("\u201cstatus.\u201d", "status"),
        ("status\u200b", "status"),  # a zero-width space pasted along
        ("\ufeffstatus", "status"),
        ("\uff53\uff54\uff41\uff54\uff55\uff53", "status"),  # full-width letters
        ("\u201chelp\u201d", "help"),
        ("'list'", "list"),
        ("`timeline`.", "timeline"),
        ("'status' INC-4", "status"),
        ("\u201csev\u201d 2", "sev"),
    ],
)
def test_a_lone_quoted_or_punctuated_command_word_runs_the_command(
    typed: str, command: str
) -> None:
    parsed = parse_command(typed, today=TODAY)
    assert parsed.name == command
    assert parsed.error is None


def test_a_quoted_command_keeps_its_arguments() -> None:
    parsed = parse_command("'status' INC-4", today=TODAY)
    assert parsed.incident_ref == 4
    assert parse_command("\u201csev\u201d 2", today=TODAY).args == ("2",)


@pytest.mark.parametrize(
    ("typed", "suggestion"),
    [
        ("\u201cstauts\u201d", "status"),
        ("'hlep'", "help"),
        ("`lsit`", "list"),
        ("stauts.", "status"),
        ("stauts\u200b", "status"),
    ],
)
def test_a_quoted_or_punctuated_typo_asks_instead_of_declaring(typed: str, suggestion: str) -> None:
    parsed = parse_command(typed, today=TODAY)
    assert parsed.name == "did_you_mean"
    assert parsed.args == (suggestion,)
    assert parsed.text == typed  # "Declare anyway" declares what was typed


@pytest.mark.parametrize(
    "typed",
    [
        "'status' page is down",
        "\u201cstatus\u201d page returns 500s",
        "`update` endpoint times out for EU customers",
        "status. page is down",
        "\u201cPayments\u201d",  # a quoted word that is no command is a title
    ],
)
def test_a_title_that_starts_with_a_quoted_word_still_declares(typed: str) -> None:
    parsed = parse_command(typed, today=TODAY)
    assert parsed.name == "declare_title"
    assert parsed.text == typed


@pytest.mark.parametrize(
    ("token", "word"),
    [
        ("\u201cStatus\u201d", "status"),
        ("-h", "-h"),
        ("/help", "/help"),
        ("?", ""),
        ("status\u200d\u2060", "status"),
    ],
)
def test_command_word(token: str, word: str) -> None:
    assert command_word(token) == word


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1", 1),
        ("42", 42),
        (str(INTEGER_MAX), INTEGER_MAX),
        ("0042", 42),
        (str(INTEGER_MAX + 1), None),  # 2147483648: more than the database's integer holds
        ("9" * 30, None),
        ("0", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1.0", None),
        ("", None),
        ("abc", None),
        ("\u00b2", None),  # "²": str.isdigit() accepts it, int() refuses it
        ("\uff11", None),  # a full-width 1
        ("\u0661", None),  # an Arabic-Indic 1
    ],
)
def test_ids_are_ascii_digits_within_the_database_range(text: str, number: int | None) -> None:
    assert whole_number(text) == number


@pytest.mark.parametrize("typed", ["done \u00b2", "done 2147483648", "done \u0661"])
def test_done_with_a_number_it_cannot_use_says_how_to_write_it(typed: str) -> None:
    parsed = parse_command(typed, today=TODAY)
    assert parsed.name == "done"
    assert parsed.error is not None and "action item" in parsed.error


@pytest.mark.parametrize(
    ("typed", "args"),
    [
        ("sev \u201c2\u201d", ("sev", ("2",))),  # sev “2”, as a phone types it
        ("sev `SEV1`", ("sev", ("SEV1",))),
        ("sev 'sev3'\u200b", ("sev", ("sev3",))),
        ("done \u201c#3\u201d", ("done", ("3",))),
        # As a Japanese or Chinese input method types them: full-width digits and letters.
        ("sev \uff11", ("sev", ("1",))),
        ("sev SEV\uff11", ("sev", ("SEV1",))),
        ("\uff53\uff45\uff56\u3000\uff12", ("sev", ("2",))),
        ("done \uff03\uff13", ("done", ("3",))),
        # A severity named in words, as a team's policy names it.
        ("sev P2 - High", ("sev", ("P2 - High",))),
        ("sev \u201cP2 - High\u201d", ("sev", ("P2 - High",))),
    ],
)
def test_a_quoted_argument_reads_as_typed_without_its_quotes(
    typed: str, args: tuple[str, tuple[str, ...]]
) -> None:
    parsed = parse_command(typed, today=TODAY)
    assert parsed.error is None
    assert (parsed.name, parsed.args) == args
