"""Naming the incident a command acts on: by number or by its channel, before the command word,
right after it, or (for commands without free text) last."""

from __future__ import annotations

from datetime import date

import pytest

from bot.slack.commands import parse_command

TODAY = date(2026, 3, 4)
CHANNEL = "C0INC1CHAN"


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_command(text, today=TODAY)


@pytest.mark.parametrize(
    ("text", "name", "ref", "words"),
    [
        ("resolve INC-1", "resolve", 1, ""),
        ("resolve INC-1 rolled back the deploy", "resolve", 1, "rolled back the deploy"),
        ("reopen inc-7", "reopen", 7, ""),
        ("reopen #7 the errors are back", "reopen", 7, "the errors are back"),
        ("note INC-1 rollback done", "note", 1, "rollback done"),
        (
            "update INC-12 rolled back, next update 14:30",
            "update",
            12,
            "rolled back, next update 14:30",
        ),
        ("action INC-3 add an alert", "action", 3, "add an alert"),
        ("classify INC-3 major", "classify", 3, "major"),
        ("role INC-3 comms <@U012AB3CD>", "role", 3, "comms"),
        ("sev INC-2 1", "sev", 2, ""),
    ],
)
def test_an_incident_right_after_the_command_word_is_the_incident(
    text: str, name: str, ref: int, words: str
) -> None:
    parsed = parse(text)
    assert (parsed.name, parsed.incident_ref, parsed.text, parsed.error) == (name, ref, words, None)


def test_text_keeps_its_lines_after_the_incident() -> None:
    parsed = parse("note INC-4 Rolled back\n*Error rate* back < 1%")
    assert (parsed.incident_ref, parsed.text) == (4, "Rolled back\n*Error rate* back < 1%")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("update the INC-1 rollback is done", "the INC-1 rollback is done"),
        ("note see INC-1", "see INC-1"),
        ("resolve duplicate of INC-1", "duplicate of INC-1"),
    ],
)
def test_an_incident_further_in_the_text_is_text(text: str, words: str) -> None:
    parsed = parse(text)
    assert (parsed.incident_ref, parsed.incident_channel, parsed.text) == (None, None, words)


def test_an_incident_number_after_declare_is_part_of_the_title() -> None:
    parsed = parse("declare INC-1 again: checkout down")
    assert (parsed.name, parsed.incident_ref, parsed.text) == (
        "declare",
        None,
        "INC-1 again: checkout down",
    )


def test_an_action_item_number_written_with_a_hash_stays_the_item() -> None:
    parsed = parse("done #2")
    assert (parsed.incident_ref, parsed.args, parsed.error) == (None, ("2",), None)
    parsed = parse("done INC-5 2")
    assert (parsed.incident_ref, parsed.args, parsed.error) == (5, ("2",), None)


@pytest.mark.parametrize(
    "text", ["INC-1 resolve INC-2", "INC-1 note INC-2 is the cause", "INC-1 status INC-2"]
)
def test_two_different_incidents_are_refused(text: str) -> None:
    parsed = parse(text)
    assert parsed.error is not None and "names two incidents" in parsed.error


def test_the_same_incident_named_twice_is_that_incident() -> None:
    parsed = parse("INC-1 resolve INC-1 fixed")
    assert (parsed.name, parsed.incident_ref, parsed.text, parsed.error) == (
        "resolve",
        1,
        "fixed",
        None,
    )


@pytest.mark.parametrize(
    "mention", [f"<#{CHANNEL}|inc-1-checkout>", f"<#{CHANNEL}|>", f"<#{CHANNEL}>"]
)
@pytest.mark.parametrize(
    ("template", "name", "words"),
    [
        ("{m}", "status", ""),
        ("{m} status", "status", ""),
        ("{m} resolve", "resolve", ""),
        ("status {m}", "status", ""),
        ("mitigate {m}", "mitigate", ""),
        ("resolve {m} rolled back", "resolve", "rolled back"),
        ("note {m} rollback done", "note", "rollback done"),
    ],
)
def test_a_channel_picked_from_slacks_list_names_its_incident(
    mention: str, template: str, name: str, words: str
) -> None:
    parsed = parse(template.format(m=mention))
    assert (
        parsed.name,
        parsed.incident_channel,
        parsed.incident_ref,
        parsed.text,
        parsed.error,
    ) == (
        name,
        CHANNEL,
        None,
        words,
        None,
    )


def test_a_channel_before_an_unknown_word_declares_nothing() -> None:
    parsed = parse(f"<#{CHANNEL}|inc-1-checkout> checkout down again")
    assert (parsed.name, parsed.incident_channel) == ("declare_title", CHANNEL)
    assert parse(f"stauts <#{CHANNEL}|inc-1-checkout>").name == "did_you_mean"


@pytest.mark.parametrize(
    ("text", "name", "ref"),
    [
        ("ＩＮＣ-１ status", "status", 1),  # full width, as an East Asian input method types it
        ("ｉｎｃ－７ resolve", "resolve", 7),
        ("＃7 status", "status", 7),
        ("INC-99999999999999999999 status", "status", 99999999999999999999),
    ],
)
def test_an_incident_number_however_typed_names_an_incident_and_declares_nothing(
    text: str, name: str, ref: int
) -> None:
    """A number too large to be any incident's is answered "there is no incident", not taken
    for the title of a new one."""
    parsed = parse(text)
    assert (parsed.name, parsed.incident_ref, parsed.error) == (name, ref, None)
