"""The clock rules as pure functions: DORA and GDPR deadlines, warnings, notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from bot.audit.clocks import (
    Board,
    EventView,
    IncidentTimes,
    Offset,
    clock_board,
    clock_lines,
    evaluate_clock,
    parse_offset,
    warning_points,
)
from bot.cli import main
from bot.config import Policy, policy_from_dict
from bot.errors import ConfigError

# Monday 2026-03-02 09:00 UTC: the firm becomes aware (detection).
AWARE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def dora() -> Policy:
    return policy_from_dict({"clocks": [{"preset": "dora"}, {"preset": "gdpr"}]})


def started(clock: str, at: datetime) -> EventView:
    return EventView("clock_started", at, {"clock": clock})


def completed(clock: str, at: datetime) -> EventView:
    return EventView("clock_completed", at, {"clock": clock})


def board(*events: EventView, declared: datetime = AWARE) -> Board:
    return clock_board(dora().clocks, IncidentTimes(declared, AWARE), list(events))


def test_offsets_are_positive_calendar_durations() -> None:
    assert parse_offset("4h") == Offset(0, timedelta(hours=4))
    assert parse_offset("1d12h") == Offset(0, timedelta(hours=36))
    assert parse_offset("1mo").after(datetime(2026, 1, 31, 12, tzinfo=UTC)) == datetime(
        2026, 2, 28, 12, tzinfo=UTC
    )
    assert parse_offset("1mo").after(datetime(2028, 1, 31, tzinfo=UTC)) == datetime(
        2028, 2, 29, tzinfo=UTC
    )
    assert parse_offset("2mo").after(datetime(2026, 12, 15, tzinfo=UTC)) == datetime(
        2027, 2, 15, tzinfo=UTC
    )
    # A warning a month before a deadline is the month before's same day, or its last: 31 March
    # less a month is 28 February (it was 1 March, counting back the length of April).
    assert parse_offset("1mo").before(datetime(2026, 3, 31, 12, tzinfo=UTC)) == datetime(
        2026, 2, 28, 12, tzinfo=UTC
    )
    assert parse_offset("1mo").before(datetime(2026, 1, 15, tzinfo=UTC)) == datetime(
        2025, 12, 15, tzinfo=UTC
    )
    for bad, why in (
        ("-4h", "negative"),
        ("0h", "zero"),
        ("4", "invalid"),
        ("4 hours", "invalid"),
        ("4000000d", "over 10 years"),
        ("100000mo", "over 10 years"),
        ("99999999999d", "over 10 years"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_offset(bad)


def test_dora_initial_is_due_four_hours_after_classification_when_that_is_earlier() -> None:
    state = board(started("initial", AWARE + timedelta(hours=1)))["initial"]
    assert state.due_at == AWARE + timedelta(hours=5)  # Monday 14:00
    assert [b.at for b in state.bounds] == [AWARE + timedelta(hours=5), AWARE + timedelta(hours=24)]


def test_dora_initial_is_due_24_hours_after_awareness_whichever_is_earlier() -> None:
    # Classified Tuesday 07:00: 4 hours would be 11:00, but 24 h after awareness is 09:00.
    state = board(started("initial", AWARE + timedelta(hours=22)))["initial"]
    assert state.due_at == AWARE + timedelta(hours=24)
    with freeze_time(AWARE + timedelta(hours=23)):
        now = datetime.now(UTC)
        text = evaluate_clock(
            {"initial": state}, "INC-7", {"clock": "initial", "point": "before-1h"}, now
        ).text
    assert text is not None
    assert text.startswith(
        "INC-7: DORA initial notification is due in 1h, at 2026-03-03 09:00 UTC."
    )
    assert (
        "the earlier of 4h after the clock's start 2026-03-03 07:00 UTC = 2026-03-03 11:00 UTC"
        in text
    )
    assert "24h after awareness 2026-03-02 09:00 UTC = 2026-03-03 09:00 UTC" in text
    assert text.endswith("record it with /incident notified initial")


def test_a_classification_made_after_24_hours_is_overdue_at_once() -> None:
    classified = AWARE + timedelta(hours=26)  # Tuesday 11:00
    state = board(started("initial", classified))["initial"]
    assert state.due_at == AWARE + timedelta(hours=24)
    # No warnings in the past: one notice, due at the moment the clock started.
    points = warning_points(state)
    assert [(p.point, p.at) for p in points] == [("due", classified)]
    with freeze_time(classified):
        outcome = evaluate_clock(
            {"initial": state}, "INC-7", {"clock": "initial", "point": "due"}, datetime.now(UTC)
        )
        assert clock_lines({"initial": state}, datetime.now(UTC)) == [
            "DORA initial notification: OVERDUE by 2h (due 2026-03-03 09:00 UTC)"
        ]
    assert outcome.text is not None
    assert "is OVERDUE by 2h (was due 2026-03-03 09:00 UTC)" in outcome.text


def test_warnings_come_before_the_deadline_and_at_it() -> None:
    state = board(started("initial", AWARE + timedelta(hours=1)))["initial"]
    assert [(p.point, p.at.hour, p.at.minute) for p in warning_points(state)] == [
        ("before-1h", 13, 0),
        ("before-15m", 13, 45),
        ("due", 14, 0),
    ]
    # Started 3h30m before a 4h deadline... with the 24 h bound closer: 1h warning already past.
    late = board(started("initial", AWARE + timedelta(hours=23, minutes=30)))["initial"]
    assert [(p.point, p.at) for p in warning_points(late)] == [
        ("before-1h", AWARE + timedelta(hours=23, minutes=30)),
        ("before-15m", AWARE + timedelta(hours=23, minutes=45)),
        ("due", AWARE + timedelta(hours=24)),
    ]


def test_a_warning_evaluated_early_looks_again_and_a_completed_clock_says_nothing() -> None:
    start = AWARE + timedelta(hours=1)
    running = board(started("initial", start))
    data = {"clock": "initial", "point": "before-1h"}
    early = evaluate_clock(running, "INC-1", data, start)
    assert (early.text, early.retry_at) == (None, AWARE + timedelta(hours=4))
    done = board(started("initial", start), completed("initial", start + timedelta(hours=2)))
    outcome = evaluate_clock(done, "INC-1", data, AWARE + timedelta(hours=4))
    assert (outcome.text, outcome.retry_at) == (None, None)
    assert evaluate_clock(running, "INC-1", {"clock": "nope", "point": "due"}, start).text is None


def test_the_intermediate_report_runs_72_hours_across_the_weekend() -> None:
    friday = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    clocks = board(
        started("initial", AWARE + timedelta(hours=1)),
        completed("initial", friday),
        started("intermediate", friday),
    )
    # Calendar time: Friday 17:00 + 72 h is Monday 17:00, weekend included.
    assert clocks["intermediate"].due_at == datetime(2026, 3, 9, 17, 0, tzinfo=UTC)
    assert clocks["initial"].status(friday) == "done late"
    assert clocks["final"].due_at is None


def test_the_final_report_counts_a_month_from_the_latest_intermediate_report() -> None:
    first = datetime(2026, 1, 30, 10, 0, tzinfo=UTC)
    events = [
        started("initial", first - timedelta(hours=5)),
        completed("initial", first - timedelta(hours=3)),
        started("intermediate", first - timedelta(hours=3)),
        completed("intermediate", first),
        started("final", first),
    ]
    assert board(*events)["final"].due_at == datetime(2026, 2, 28, 10, 0, tzinfo=UTC)
    again = board(*events, completed("intermediate", datetime(2026, 2, 2, 8, tzinfo=UTC)))
    assert again["final"].due_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    with freeze_time("2026-02-03 08:00:00"):
        assert clock_lines(again, datetime.now(UTC)) == [
            "DORA initial notification: sent 2026-01-30 07:00 UTC",
            "DORA intermediate report: sent 2026-01-30 10:00 UTC; latest 2026-02-02 08:00 UTC "
            "(2 recorded)",
            "DORA final report: due 2026-03-02 08:00 UTC (in 27d)",
        ]


def test_gdpr_is_72_hours_from_awareness_through_the_weekend() -> None:
    friday_evening = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
    clocks = clock_board(
        dora().clocks,
        IncidentTimes(friday_evening + timedelta(hours=2), friday_evening),
        [started("gdpr", friday_evening + timedelta(hours=30))],
    )
    assert clocks["gdpr"].due_at == datetime(2026, 3, 9, 18, 0, tzinfo=UTC)  # Monday 18:00
    assert [p.point for p in warning_points(clocks["gdpr"])] == [
        "before-24h",
        "before-4h",
        "before-1h",
        "due",
    ]


@pytest.mark.parametrize(
    ("clocks", "message"),
    [
        (
            [{"key": "a", "starts_on": "declared", "deadlines": [{"after": "-4h"}]}],
            "clocks: clock 'a': deadlines.0.after: duration '-4h' is negative",
        ),
        (
            [{"key": "a", "starts_on": "declared", "deadlines": [{"after": "4h", "since": "b"}]}],
            "clocks: clock 'a': deadlines.0.since refers to unknown clock 'b'",
        ),
        (
            [{"key": "a", "starts_on": "completed:zz", "deadlines": [{"after": "4h"}]}],
            "clocks: clock 'a': starts_on refers to unknown clock 'zz'",
        ),
        (
            [{"key": "a", "starts_on": "declared", "warn_before": ["-1h"], "deadlines": []}],
            "clocks: clock 'a': deadlines: List should have at least 1 item",
        ),
        ([{"preset": "dora"}, {"preset": "dora"}], "clock 'initial' is defined twice"),
        ([{"preset": "sox"}], "preset must be one of dora, gdpr"),
        (
            [{"key": "a", "starts_on": "severity:SEV9", "deadlines": [{"after": "4h"}]}],
            "clock 'a': starts_on names unknown severity 'SEV9'",
        ),
    ],
)
def test_bad_clock_policies_are_refused_with_the_clock_named(
    clocks: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        policy_from_dict({"clocks": clocks}, source="firebreak.toml")
    assert str(error.value).startswith("firebreak.toml: ")
    assert message in str(error.value)


def test_no_clocks_by_default_and_presets_expand() -> None:
    assert Policy().clocks == []
    assert [c.key for c in dora().clocks] == ["initial", "intermediate", "final", "gdpr"]


DORA = '[[clocks]]\npreset = "dora"\n'
MINE = '[[clocks]]\nkey = "a"\nstarts_on = "declared"\ndeadlines = [{ after = "4h" }]\n'


@pytest.mark.parametrize(
    ("toml", "line", "message"),
    [
        (DORA + DORA, 3, "clock 'initial' is defined twice (a preset and a clock of yours?)"),
        (
            MINE + '\n[[clocks]]\nname = "A again"\nkey = "a"\nstarts_on = "detected"\n'
            'deadlines = [{ after = "1h" }]\n',
            8,
            "clock 'a' is defined twice (a preset and a clock of yours?)",
        ),
        (
            MINE.replace('"4h" }', '"4h", since = "nope" }'),
            4,
            "clock 'a': deadlines.0.since refers to unknown clock 'nope'; use start, "
            "awareness, declared, detected, impact or another clock's key (none)",
        ),
        (
            DORA + MINE.replace('"declared"', '"bogus"'),
            5,
            "clock 'a': starts_on: starts_on 'bogus': use classified:<class>, severity:<key>, "
            "label:<name>, declared, detected or completed:<clock>",
        ),
        (
            MINE.replace('"declared"', '"severity:SEV9"'),
            3,
            "clock 'a': starts_on names unknown severity 'SEV9'",
        ),
        (
            MINE.replace('[{ after = "4h" }]', "[]"),
            4,
            "clock 'a': deadlines: List should have at least 1 item after validation, not 0",
        ),
        (
            DORA + '\n[[clocks]]\npreset = "hipaa"\n',
            5,
            "[[clocks]] 2: preset must be one of dora, gdpr and stand alone",
        ),
        (
            MINE.replace('"declared"', '"completed:b"')
            + MINE.replace('key = "a"', 'key = "b"').replace('"declared"', '"completed:a"'),
            3,
            "clock 'a': starts_on waits for a clock that waits for it (a -> b -> a): none of "
            "them can ever start",
        ),
    ],
)
def test_a_bad_clock_is_named_with_the_line_it_is_written_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, line: int, message: str
) -> None:
    path = tmp_path / "firebreak.toml"
    path.write_text(toml)
    assert main(["--policy", str(path), "policy", "check"]) == 2
    assert capsys.readouterr().err == f"firebreak: {path}:{line}: clocks: {message}\n"


def test_policy_check_exits_2_naming_the_clock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "firebreak.toml"
    path.write_text(
        '[[clocks]]\npreset = "dora"\n\n[[clocks]]\nkey = "brands"\n'
        'starts_on = "classified:card-data"\ndeadlines = [{ after = "24h", since = "inital" }]\n'
    )
    assert main(["--policy", str(path), "policy", "check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        f"firebreak: {path}:7: clocks: clock 'brands': deadlines.0.since refers to unknown "
        "clock 'inital'; use start, awareness, declared, detected, impact or another clock's "
        "key (initial, intermediate, final)"
    )
    path.write_text(
        '[[clocks]]\nkey = "x"\nstarts_on = "declared"\ndeadlines = [{ after = "-1h" }]\n'
    )
    assert main(["--policy", str(path), "policy", "check"]) == 2
    assert "clock 'x': deadlines.0.after: duration '-1h' is negative" in capsys.readouterr().err
