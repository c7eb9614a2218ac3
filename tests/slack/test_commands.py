from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.slack.commands import SUBCOMMANDS, parse_command

TODAY = date(2026, 3, 4)  # a Wednesday


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_command(text, today=TODAY)


def test_no_text_opens_the_form() -> None:
    assert parse("").name == "open_form"
    assert parse("   ").name == "open_form"


def test_free_text_declares_with_it_as_title() -> None:
    parsed = parse("Checkout returns 500s for EU")
    assert (parsed.name, parsed.text) == ("declare_title", "Checkout returns 500s for EU")


def test_declare_explicitly_even_when_the_title_starts_with_a_command_word() -> None:
    assert parse("declare status page is down").text == "status page is down"
    assert parse("declare").error


@pytest.mark.parametrize(
    ("text", "name", "ref"),
    [
        ("status", "status", None),
        ("INC-42", "status", 42),
        ("inc-42 resolve", "resolve", 42),
        ("#7 ack", "ack", 7),
        ("ack INC-7", "ack", 7),
        ("sev 1 INC-9", "sev", 9),
        ("timeline inc12", "timeline", 12),
    ],
)
def test_incidents_can_be_named_before_or_after(text: str, name: str, ref: int | None) -> None:
    parsed = parse(text)
    assert (parsed.name, parsed.incident_ref, parsed.error) == (name, ref, None)


@pytest.mark.parametrize("text", ["--help", "-h", "?", "help?", "HELP?", "-help"])
def test_the_usual_ways_of_asking_for_help_are_help_not_a_title(text: str) -> None:
    assert parse(text).name == "help"


@pytest.mark.parametrize(
    ("text", "args", "ref"),
    [
        ("sev1", ("1",), None),
        ("SEV2", ("2",), None),
        ("sev-3", ("3",), None),
        ("severity4", ("4",), None),
        ("INC-7 sev1", ("1",), 7),
        ("sev2 INC-7", ("2",), 7),
    ],
)
def test_a_severity_written_against_the_command_is_the_command(
    text: str, args: tuple[str, ...], ref: int | None
) -> None:
    parsed = parse(text)
    assert (parsed.name, parsed.args, parsed.incident_ref, parsed.error) == ("sev", args, ref, None)


@pytest.mark.parametrize(
    "text", ["sev1 checkout down", "Status: checkout broken", "Checkout down?", "what?"]
)
def test_titles_that_start_like_a_command_stay_titles(text: str) -> None:
    assert (parse(text).name, parse(text).text) == ("declare_title", text)


def test_status_with_a_question_mark_is_the_status() -> None:
    assert parse("status?").name == "status"


def test_mentions_are_read_in_their_escaped_form() -> None:
    assert parse("ic <@U012AB3CD|dana>").users == ("U012AB3CD",)
    assert parse("ic <@U012AB3CD>").users == ("U012AB3CD",)
    assert parse("ic me").users == ("me",)
    role = parse("role comms lead <@W0123ABCD|sam>")
    assert (role.text, role.users) == ("comms lead", ("W0123ABCD",))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ic", "Say who"),
        ("ic dana", "mention them with @"),
        ("role comms", "Say which role and who"),
        ("role comms dana", "not a person"),
        ("role", "Say which role"),
        ("sev", "Say which severity"),
        ("note", "Add the text"),
        ("update   ", "Add the text"),
        ("done x", "Say which action item"),
        ("done 99999999999999999999", "Say which action item"),
        ("ic @ben.okafor", "Slack did not turn '@ben.okafor' into a mention"),
        ("timeline now please", "takes no words"),
        ("action", "Describe the action item"),
        ("action fix it 2020-01-01", "in the past"),
    ],
)
def test_bad_arguments_explain_the_usage(text: str, message: str) -> None:
    parsed = parse(text)
    assert parsed.error is not None and message in parsed.error


def test_update_and_note_keep_the_text_as_typed() -> None:
    text = "Rolled back to v1.2.3\n*Error rate* back < 1% — next update 14:30"
    assert parse(f"update {text}").text == text
    assert parse(f"INC-3 note {text}").text == text


def test_action_items_take_an_owner_and_a_due_date_in_any_order() -> None:
    parsed = parse("action Add alert on pool saturation <@U0AAA1111> 2026-04-01")
    assert parsed.text == "Add alert on pool saturation"
    assert parsed.users == ("U0AAA1111",)
    assert parsed.due == date(2026, 4, 1)
    assert parse("action Write docs tomorrow <@U0AAA1111>").due == date(2026, 3, 5)
    assert parse("action Write docs friday").due == date(2026, 3, 6)
    assert parse("action Fix it").due is None


def test_an_owner_typed_without_picking_the_person_is_refused_not_kept_in_the_text() -> None:
    """``@chloe.martin`` that Slack did not turn into a mention would be stored as part of the
    item with no owner: refused with how to mention, as ``ic`` and ``role`` do."""
    hint = (
        "Slack did not turn '@chloe.martin' into a mention: pick the person from the @ list "
        "as you type, so Slack sends who they are."
    )
    assert parse("action Write rollback guide @chloe.martin").error == hint
    assert parse("action Write rollback guide @chloe.martin 2026-04-01").error == hint
    assert parse("action Email support@example.com").text == "Email support@example.com"


def test_a_due_date_that_does_not_exist_is_refused_not_kept_in_the_text() -> None:
    for day in ("2026-02-30", "2026-13-01"):
        parsed = parse(f"action Rotate the lb-2 cert {day}")
        assert (
            parsed.error
            == f"{day} is not a date. Write the due date as YYYY-MM-DD, e.g. 2026-03-11."
        )
        assert parsed.text == ""


def test_every_subcommand_word_is_recognised() -> None:
    for word in SUBCOMMANDS:
        assert parse(word).name == SUBCOMMANDS[word]


@given(st.text(max_size=300))
def test_the_parser_never_raises(text: str) -> None:
    parsed = parse(text)
    assert parsed.name in set(SUBCOMMANDS.values()) | {"open_form", "declare_title", "did_you_mean"}
    assert parsed.error is None or isinstance(parsed.error, str)


def test_declare_after_an_incident_number_is_refused_not_a_silent_new_incident() -> None:
    parsed = parse("INC-1 declare Another thing")
    assert parsed.error == (
        "`declare` opens a new incident, so it takes no incident: `/incident declare "
        "&lt;title&gt;`. To add to INC-1: `/incident INC-1 update &lt;text&gt;` or "
        "`note &lt;text&gt;`."
    )
    # Named by its channel, the same: never a new incident with the channel dropped.
    by_channel = parse("<#C0123ABC|inc-1-db> declare db down")
    assert by_channel.error == (
        "`declare` opens a new incident, so it takes no incident: `/incident declare "
        "&lt;title&gt;`. To add to <#C0123ABC>: `/incident <#C0123ABC> update &lt;text&gt;` "
        "or `note &lt;text&gt;`."
    )
    assert parse("declare INC-1 is back").text == "INC-1 is back"  # a number after it: text
