"""Generating and storing postmortem versions: numbering, idempotency, files, concurrency."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot import incidents as core
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.errors import InvalidInput
from bot.models import EventKind, Incident, Postmortem, TimelineEvent
from bot.postmortem import (
    close_generation_key,
    generate_on_close,
    generate_postmortem,
    list_postmortems,
    write_file_atomically,
)

from .scenario import CLOSED_AT, T0


def declare(db: Database, policy: Policy, title: str = "Search is slow") -> int:
    with freeze_time(T0), db.transaction() as session:
        incident = core.declare_incident(session, policy, title=title, reporter="U1").incident
    assert incident.id is not None
    return incident.id


def generate(db: Database, policy: Policy, incident_id: int, key: str) -> Postmortem:
    with db.transaction() as session:
        return generate_postmortem(session, policy, incident_id, actor="U1", key=key)


def generated_events(db: Database, incident_id: int) -> list[TimelineEvent]:
    with db.transaction() as session:
        return list(
            session.exec(
                select(TimelineEvent).where(
                    TimelineEvent.incident_id == incident_id,
                    TimelineEvent.kind == EventKind.POSTMORTEM_GENERATED,
                )
            ).all()
        )


def versions(db: Database, incident_id: int) -> list[Postmortem]:
    with db.transaction() as session:
        return list_postmortems(session, incident_id)


def test_regenerating_adds_a_version_and_keeps_the_earlier_ones(
    db: Database, team_policy: Policy, output_dir: Path
) -> None:
    incident_id = declare(db, team_policy)
    with freeze_time(T0.replace(hour=3)):
        first = generate(db, team_policy, incident_id, "k1")
    with freeze_time(T0.replace(hour=4)), db.transaction() as session:
        core.add_note(session, team_policy, incident_id, "found the slow query", actor="U2")
        second = generate_postmortem(session, team_policy, incident_id, actor="U2", key="k2")

    assert (first.version, second.version) == (1, 2)
    stored = versions(db, incident_id)
    assert [(p.version, p.markdown) for p in stored] == [
        (1, first.markdown),
        (2, second.markdown),
    ]
    assert "found the slow query" not in first.markdown
    assert "found the slow query" in second.markdown
    assert sorted(p.name for p in output_dir.iterdir()) == ["INC-1-v1.md", "INC-1-v2.md"]
    assert Path(first.file_path or "").read_text(encoding="utf-8") == first.markdown
    assert Path(second.file_path or "").read_text(encoding="utf-8") == second.markdown
    # Each generation is on the timeline, but drafts do not list their own generation.
    events = generated_events(db, incident_id)
    assert [e.data["version"] for e in events] == [1, 2]
    assert events[1].actor_id == "U2"
    assert "Postmortem draft v1 generated" not in second.markdown


def test_versions_are_numbered_per_incident(db: Database, team_policy: Policy) -> None:
    first = declare(db, team_policy, "one")
    other = declare(db, team_policy, "two")
    generate(db, team_policy, first, "a")
    generate(db, team_policy, first, "b")
    assert generate(db, team_policy, other, "c").version == 1


def test_the_same_key_returns_the_stored_version_and_writes_nothing(
    db: Database, team_policy: Policy, output_dir: Path
) -> None:
    incident_id = declare(db, team_policy)
    with freeze_time(T0.replace(hour=3)):
        first = generate(db, team_policy, incident_id, "slack:trigger:123")
    (output_dir / "INC-1-v1.md").unlink()
    with freeze_time(T0.replace(hour=5)), db.transaction() as session:
        core.add_note(session, team_policy, incident_id, "later note", actor="U2")
        again = generate_postmortem(
            session, team_policy, incident_id, actor="U2", key="slack:trigger:123"
        )

    assert again.id == first.id
    assert again.markdown == first.markdown
    assert len(versions(db, incident_id)) == 1
    assert len(generated_events(db, incident_id)) == 1
    assert list(output_dir.iterdir()) == []


def test_a_key_used_for_another_incident_is_refused(db: Database, team_policy: Policy) -> None:
    first = declare(db, team_policy, "one")
    other = declare(db, team_policy, "two")
    generate(db, team_policy, first, "reused")
    with pytest.raises(InvalidInput, match="already used for another incident"):
        generate(db, team_policy, other, "reused")
    assert versions(db, other) == []


def test_an_empty_key_or_actor_is_refused(db: Database, team_policy: Policy) -> None:
    incident_id = declare(db, team_policy)
    with pytest.raises(InvalidInput, match="key is empty"):
        generate(db, team_policy, incident_id, "  ")
    with pytest.raises(InvalidInput, match="Not a valid user id"), db.transaction() as session:
        generate_postmortem(session, team_policy, incident_id, actor="", key="k")
    assert versions(db, incident_id) == []


def test_a_very_long_key_is_still_one_version(db: Database, team_policy: Policy) -> None:
    incident_id = declare(db, team_policy)
    key = "view:" + "x" * 400
    first = generate(db, team_policy, incident_id, key)
    assert generate(db, team_policy, incident_id, key).id == first.id
    assert generate(db, team_policy, incident_id, key + "y").version == 2


def close(
    db: Database, policy: Policy, incident_id: int, key: str | None = None
) -> Postmortem | None:
    with db.transaction() as session:
        change = core.close_incident(session, policy, incident_id, actor="U1", key=key)
        return generate_on_close(session, policy, change, actor="U1")


def test_closing_generates_one_draft_however_often_it_is_closed(
    db: Database, team_policy: Policy
) -> None:
    incident_id = declare(db, team_policy)
    with freeze_time(CLOSED_AT):
        draft = close(db, team_policy, incident_id, key="slack:close:1")
        retried = close(db, team_policy, incident_id, key="slack:close:1")  # a Slack retry
        again = close(db, team_policy, incident_id)  # a second person clicking Close
    assert draft is not None
    assert (retried, again) == (None, None)
    assert [p.version for p in versions(db, incident_id)] == [1]
    assert "Closed" in draft.markdown

    # Retrying the generation itself (the close committed, the reply was lost) is one version.
    with db.transaction() as session:
        closed = next(
            e for e in core.timeline(session, incident_id) if e.data.get("phase") == "closed"
        )
        incident = session.get(Incident, incident_id)
        assert incident is not None
        key = close_generation_key(incident, closed)
        assert generate_postmortem(session, team_policy, incident_id, actor="U9", key=key).id == (
            draft.id
        )


def test_closing_again_after_a_reopen_makes_a_new_version(
    db: Database, team_policy: Policy
) -> None:
    incident_id = declare(db, team_policy)
    close(db, team_policy, incident_id)
    with db.transaction() as session:
        core.reopen_incident(session, team_policy, incident_id, actor="U1", text="it is back")
    second = close(db, team_policy, incident_id)
    assert second is not None and second.version == 2


def test_a_draft_after_a_reopen_says_when_it_was_resolved_and_reopened(
    db: Database, team_policy: Policy
) -> None:
    """Resolved at 03:35, closed, reopened at 04:55 ("errors are back"), closed again at 05:25:
    the impact window runs to the last resolve, across the 80 minutes it was resolved. The
    draft says so, with both times, rather than showing one unbroken window; and that it is
    written afresh, so what was filled into version 1 is not in it."""
    incident_id = declare(db, team_policy)
    with freeze_time("2026-03-04 03:35:00"), db.transaction() as session:
        core.resolve_incident(session, team_policy, incident_id, actor="U1")
    with freeze_time("2026-03-04 03:55:00"):
        first = close(db, team_policy, incident_id)
    with freeze_time("2026-03-04 04:55:00"), db.transaction() as session:
        core.reopen_incident(session, team_policy, incident_id, actor="U2", text="errors are back")
    with freeze_time("2026-03-04 05:25:00"):
        second = close(db, team_policy, incident_id)
    assert first is not None and "Reopened" not in first.markdown
    assert "written afresh" not in first.markdown
    assert second is not None
    assert (
        "This version is written afresh from the record: answers written into version 1 are "
        "not carried over; copy them across."
    ) in second.markdown
    assert (
        "- **Reopened 1 time** (UTC): resolved 2026-03-04 03:35, reopened 2026-03-04 04:55 by "
        'U2 ("errors are back"). The impact window and the time to resolve run to the last '
        "resolve, across the time between; the time to mitigate runs to 2026-03-04 05:25 UTC "
        "(the last resolve)."
    ) in second.markdown


def test_a_mitigation_before_a_reopen_stays_the_time_to_mitigate_and_the_draft_says_so(
    db: Database, team_policy: Policy
) -> None:
    """Mitigated at 03:10, resolved, reopened, mitigated and resolved again: the time to
    mitigate counts to 03:10, which the reopen did not undo. Before, the draft said it ran to
    the last resolve, as the time to resolve does."""
    incident_id = declare(db, team_policy)
    steps = (
        ("03:10", core.mitigate_incident, "U1"),
        ("03:35", core.resolve_incident, "U1"),
        ("04:55", core.reopen_incident, "U2"),
        ("05:05", core.mitigate_incident, "U1"),
    )
    for at, change, actor in steps:
        with freeze_time(f"2026-03-04 {at}:00"), db.transaction() as session:
            change(session, team_policy, incident_id, actor=actor)
    with freeze_time("2026-03-04 05:25:00"):
        draft = close(db, team_policy, incident_id)
    assert draft is not None
    assert (
        "the time to mitigate runs to 2026-03-04 03:10 UTC (the first mitigation: a reopen "
        "does not move it; after the last reopen the incident was mitigated again at "
        "2026-03-04 05:05 UTC)."
    ) in draft.markdown
    assert "- **Mitigated:** 2026-03-04 03:10 UTC" in draft.markdown


def test_a_mitigation_only_after_the_reopen_is_not_called_the_first(
    db: Database, team_policy: Policy
) -> None:
    """Resolved at 03:35 (which stamps a mitigation), reopened at 04:55 (which takes it back),
    mitigated at 05:05 and resolved again: the time to mitigate runs to 05:05, the mitigation
    after the reopen. Before, the draft called 05:05 the first mitigation, one a reopen does
    not move, and said it was "mitigated again" at the same minute."""
    incident_id = declare(db, team_policy)
    steps = (
        ("03:35", core.resolve_incident, "U1"),
        ("04:55", core.reopen_incident, "U2"),
        ("05:05", core.mitigate_incident, "U1"),
    )
    for at, change, actor in steps:
        with freeze_time(f"2026-03-04 {at}:00"), db.transaction() as session:
            change(session, team_policy, incident_id, actor=actor)
    with freeze_time("2026-03-04 05:25:00"):
        draft = close(db, team_policy, incident_id)
    assert draft is not None
    assert (
        "the time to mitigate runs to 2026-03-04 05:05 UTC (the mitigation after the last "
        "reopen: the one before it was stamped by a resolve, and a reopen takes that back with "
        "the resolution)."
    ) in draft.markdown
    assert "first mitigation" not in draft.markdown
    assert "- **Mitigated:** 2026-03-04 05:05 UTC" in draft.markdown


def test_no_draft_on_close_when_the_policy_says_so(db: Database, output_dir: Path) -> None:
    policy = policy_from_dict({"postmortem": {"on_close": False, "output_dir": str(output_dir)}})
    incident_id = declare(db, policy)
    assert close(db, policy, incident_id) is None
    assert versions(db, incident_id) == []


def test_other_changes_do_not_generate_a_draft(db: Database, team_policy: Policy) -> None:
    incident_id = declare(db, team_policy)
    with db.transaction() as session:
        change = core.resolve_incident(session, team_policy, incident_id, actor="U1")
        assert generate_on_close(session, team_policy, change, actor="U1") is None


def test_concurrent_generations_get_distinct_versions(db: Database, team_policy: Policy) -> None:
    incident_id = declare(db, team_policy)
    threads = 6
    barrier = Barrier(threads)

    def run(i: int) -> int:
        barrier.wait()
        return generate(db, team_policy, incident_id, f"key-{i}").version

    with ThreadPoolExecutor(threads) as pool:
        numbers = sorted(pool.map(run, range(threads)))
    assert numbers == list(range(1, threads + 1))
    assert len(generated_events(db, incident_id)) == threads


def test_the_same_generation_requested_at_once_is_stored_once(
    db: Database, team_policy: Policy, output_dir: Path
) -> None:
    incident_id = declare(db, team_policy)
    threads = 6
    barrier = Barrier(threads)

    def run(_: int) -> int:
        barrier.wait()
        postmortem = generate(db, team_policy, incident_id, "slack:close:C1:123")
        assert postmortem.id is not None
        return postmortem.id

    with ThreadPoolExecutor(threads) as pool:
        ids = set(pool.map(run, range(threads)))
    assert len(ids) == 1
    assert len(versions(db, incident_id)) == 1
    assert len(generated_events(db, incident_id)) == 1
    assert [p.name for p in output_dir.iterdir()] == ["INC-1-v1.md"]


def test_a_file_that_cannot_be_written_is_reported_and_the_version_kept(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the output directory should be")
    policy = policy_from_dict({"postmortem": {"output_dir": str(blocker / "postmortems")}})
    incident_id = declare(db, policy)
    with caplog.at_level(logging.WARNING, logger="bot.postmortem"):
        postmortem = generate(db, policy, incident_id, "k")

    assert postmortem.file_path is None
    assert [p.version for p in versions(db, incident_id)] == [1]
    [event] = generated_events(db, incident_id)
    expected = f"{blocker / 'postmortems' / 'INC-1-v1.md'}: cannot write the postmortem draft"
    assert event.data["file_error"].startswith(expected)
    assert expected in caplog.text


def test_without_an_output_directory_nothing_is_written(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    policy = policy_from_dict({"postmortem": {"output_dir": None}})
    incident_id = declare(db, policy)
    postmortem = generate(db, policy, incident_id, "k")
    assert postmortem.file_path is None
    assert postmortem.markdown.startswith("# INC-1: Search is slow\n")
    assert list(tmp_path.iterdir()) == []


def test_a_relative_output_directory_is_next_to_the_policy_file(
    db: Database, tmp_path: Path
) -> None:
    from bot.config import load_policy

    policy_file = tmp_path / "team" / "firebreak.toml"
    policy_file.parent.mkdir()
    policy_file.write_text('[postmortem]\noutput_dir = "drafts"\n', encoding="utf-8")
    policy = load_policy(policy_file)
    incident_id = declare(db, policy)
    postmortem = generate(db, policy, incident_id, "k")
    assert postmortem.file_path == str(tmp_path / "team" / "drafts" / "INC-1-v1.md")


def test_a_file_is_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "INC-1-v1.md"
    write_file_atomically(target, "first\n")
    write_file_atomically(target, "second\n")
    assert target.read_text() == "second\n"

    def fail(_source: object, _target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        write_file_atomically(target, "third, interrupted\n")
    assert target.read_text() == "second\n"
    assert [p.name for p in tmp_path.iterdir()] == ["INC-1-v1.md"]


def test_an_alerting_tool_is_named_as_people_call_it_and_is_no_responder(
    db: Database, policy: Policy
) -> None:
    """An incident Alertmanager declared: the draft says "Alertmanager", not its principal
    ``alerts:alertmanager``, and lists only people among the responders."""
    with freeze_time(T0), db.transaction() as session:
        declared = core.declare_incident(
            session, policy, title="Checkout 5xx", reporter="alerts:alertmanager"
        ).incident
        assert declared.id is not None
        core.record_timeline_event(
            session,
            policy,
            declared.id,
            kind=EventKind.ALERT_FIRING,
            text="Alert firing: Checkout5xx (1 of 1 firing in this group)",
            actor="alerts:alertmanager",
        )
        core.add_note(session, policy, declared.id, "rolling back", actor="U0ANA0001")
    draft = generate(db, policy, declared.id, "pm:alerts").markdown
    assert "- **Reported by:** Alertmanager" in draft
    assert "alerts:alertmanager" not in draft
    responders = draft.split("## Responders and roles", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in responders.splitlines() if line.startswith("| @")]
    assert [row.split(" | ")[0] for row in rows] == ["| @U0ANA0001"]
    assert "| Alertmanager |" not in responders
