"""A realistic incident, built through the core functions under a frozen clock.

INC-1: a deploy exhausts the payments database pool; card payments fail at checkout. Declared
SEV1, it has everything a postmortem draws on: status changes, a severity change (down to SEV2
once mitigated), a commander hand-over, notes, captured Slack messages (mentions, links,
entities, a code block, one capture withdrawn), a runbook with done, skipped and open steps,
action items, resolve and close.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

from freezegun import freeze_time
from sqlmodel import Session

from bot import incidents as core
from bot.config import Policy
from bot.db import Database
from bot.models import EventKind, Incident, RunbookRun, RunbookStepState

T0 = datetime(2026, 3, 4, 2, 55, tzinfo=UTC)
CLOSED_AT = datetime(2026, 3, 9, 9, 30, tzinfo=UTC)

ALICE = "U01ALICE"  # on-call SRE, declares
BOB = "U02BOB"  # first incident commander
CAROL = "U03CAROL"  # comms lead
DAN = "U04DAN"  # scribe
ERIN = "U05ERIN"  # payments engineer
FRANK = "U06FRANK"  # takes over as commander
GRACE = "U07GRACE"  # not known to the directory: shown by id

CHANNEL = "C0INC1"
PERMALINK = "https://example.slack.com/archives/C0INC1/p17725929"


class Directory:
    """Names as the Slack layer would look them up with users.info."""

    users: ClassVar[dict[str, str]] = {
        ALICE: "Alice Ng",
        BOB: "Bob Okafor",
        CAROL: "Carol Diaz",
        DAN: "Dan Kim",
        ERIN: "Erin Weiss",
        FRANK: "Frank Moreau",
    }
    channels: ClassVar[dict[str, str]] = {"C0DEPLOYS": "deploys"}

    def user(self, user_id: str) -> str | None:
        return self.users.get(user_id)

    def channel(self, channel_id: str) -> str | None:
        return self.channels.get(channel_id)


RUNBOOK_STEPS = [
    "Freeze further deploys",
    "Roll back to the previous release",
    "Flush the CDN cache",
    "Verify error rates in Grafana",
    "Post a customer update",
]


def _start_runbook(session: Session, policy: Policy, incident_id: int, at: datetime) -> None:
    """What the runbook module stores: a run with its snapshot, and step states."""
    run = RunbookRun(
        incident_id=incident_id,
        runbook_id="deploys/rollback.md",
        title="Roll back a bad deploy",
        source_path="runbooks/deploys/rollback.md",
        content_hash="0" * 64,
        snapshot={
            "title": "Roll back a bad deploy",
            "description": "When a release makes things worse, go back first, debug later.",
            "context": [{"title": "Owners", "markdown": "Platform team"}],
            "steps": [
                {"title": title, "markdown": f"Do: {title.lower()}.", "line": 10 + 4 * i}
                for i, title in enumerate(RUNBOOK_STEPS)
            ],
        },
        step_count=len(RUNBOOK_STEPS),
        started_at=at,
        started_by=BOB,
    )
    session.add(run)
    session.flush()
    assert run.id is not None
    states = [
        (0, "done", DAN, DAN, at + timedelta(minutes=1)),
        (1, "done", ERIN, ERIN, at + timedelta(minutes=6)),
        (2, "skipped", None, BOB, at + timedelta(minutes=7)),
        (3, "in_progress", GRACE, BOB, at + timedelta(minutes=8)),
    ]
    for index, state, assignee, by, when in states:
        session.add(
            RunbookStepState(
                run_id=run.id,
                step_index=index,
                state=state,
                assignee_id=assignee,
                started_at=when - timedelta(minutes=1),
                updated_at=when,
                updated_by=by,
            )
        )
    core.record_timeline_event(
        session,
        policy,
        incident_id,
        kind=EventKind.RUNBOOK_STARTED,
        text="Runbook started: Roll back a bad deploy",
        actor=BOB,
        key="runbook:start:1",
    )


def build_incident(db: Database, policy: Policy) -> Incident:
    """Run the incident from declaration to resolution; closing is left to the test."""
    with freeze_time(T0) as clock:

        def at(minutes: int) -> None:
            clock.move_to(T0 + timedelta(minutes=minutes))

        with db.transaction() as s:
            incident = core.declare_incident(
                s,
                policy,
                title="Checkout returns 500s for card payments",
                reporter=ALICE,
                severity="SEV1",
                service="payments-api",
                summary="Card payments failed at checkout with HTTP 500 after a deploy of "
                "payments-api exhausted its database connection pool.",
                impact_started_at=T0 - timedelta(minutes=12),
                detected_at=T0 - timedelta(minutes=7),
                key="view:V01DECLARE",
            ).incident
            # What the Slack layer records once it has created the channel.
            incident.slack_channel_id = CHANNEL
            incident.slack_channel_name = "inc-1-checkout-returns-500s"
            s.add(incident)
        assert incident.id is not None
        iid = incident.id

        at(2)
        with db.transaction() as s:
            core.acknowledge_incident(s, policy, iid, actor=BOB)
        at(3)
        with db.transaction() as s:
            core.assign_role(s, policy, iid, "commander", BOB, actor=BOB)
        at(4)
        with db.transaction() as s:
            core.assign_role(s, policy, iid, "comms", CAROL, actor=BOB)
            core.assign_role(s, policy, iid, "scribe", DAN, actor=BOB)
        at(7)
        with db.transaction() as s:
            core.change_status(
                s, policy, iid, "investigating", actor=BOB, text="Error rate 38% on /pay"
            )
        at(11)
        with db.transaction() as s:
            core.capture_message(
                s,
                policy,
                iid,
                source_ref=f"slack:{CHANNEL}:1772592540.000100",
                text="Seeing 502s from <https://grafana.example.com/d/pay?orgId=1&amp;env=prod"
                "|the payments dashboard> since the 02:40 deploy; cc <@U02BOB> "
                "<!subteam^S0SRE|@sre-oncall> &lt;- please look",
                author=ERIN,
                occurred_at=T0 + timedelta(minutes=9),
                captured_by=DAN,
                source_url=PERMALINK + "0100",
            )
            core.capture_message(
                s,
                policy,
                iid,
                source_ref=f"slack:{CHANNEL}:1772592560.000200",
                text="wrong channel, ignore",
                author=ERIN,
                occurred_at=T0 + timedelta(minutes=10),
                captured_by=DAN,
                source_url=PERMALINK + "0200",
            )
        at(12)
        with db.transaction() as s:
            core.withdraw_capture(s, policy, iid, f"slack:{CHANNEL}:1772592560.000200", actor=DAN)
            core.add_note(
                s,
                policy,
                iid,
                "Deploy 2026.03.04-1 of payments-api rolled out at 02:41 "
                "(see <#C0DEPLOYS>); pool size went from 50 to 5 in the new config",
                actor=DAN,
            )
        at(13)
        with db.transaction() as s:
            core.capture_message(
                s,
                policy,
                iid,
                source_ref=f"slack:{CHANNEL}:1772592780.000300",
                text="```ERROR pool exhausted: 5/5 connections in use\n"
                "ERROR timeout waiting for connection after 30000ms```\n"
                "same on all pods <!here>",
                author=GRACE,
                occurred_at=T0 + timedelta(minutes=13),
                captured_by=DAN,
                source_url=PERMALINK + "0300",
            )
        at(15)
        with db.transaction() as s:
            core.change_status(
                s,
                policy,
                iid,
                "identified",
                actor=BOB,
                text="Connection pool exhausted after the deploy",
            )
        at(16)
        with db.transaction() as s:
            _start_runbook(s, policy, iid, T0 + timedelta(minutes=16))
        at(21)
        with db.transaction() as s:
            core.add_note(
                s,
                policy,
                iid,
                "Checked `SELECT count(*) FROM payments WHERE status = 'failed'; --` "
                "→ 1,204 rows 🔥 | הלקוחות קיבלו שגיאה",
                actor=DAN,
            )
        at(30)
        with db.transaction() as s:
            core.assign_role(s, policy, iid, "commander", FRANK, actor=BOB)
        at(32)
        with db.transaction() as s:
            core.post_status_update(
                s,
                policy,
                iid,
                "We rolled back the faulty release; card payments are recovering. "
                "Next update at 03:45 UTC.",
                actor=CAROL,
            )
        at(35)
        with db.transaction() as s:
            core.mitigate_incident(s, policy, iid, actor=FRANK)
        at(40)
        with db.transaction() as s:
            core.change_severity(s, policy, iid, "SEV2", actor=FRANK)
        at(50)
        with db.transaction() as s:
            core.add_action_item(
                s,
                policy,
                iid,
                "Alert on DB connection pool saturation (> 80% for 5m) | page payments on-call",
                actor=FRANK,
                owner=ERIN,
                due_on=date(2026, 3, 18),
            )
            core.add_action_item(
                s,
                policy,
                iid,
                "Add a canary stage to payments-api deploys\nwith automatic rollback on 5xx",
                actor=FRANK,
            )
            core.add_action_item(
                s,
                policy,
                iid,
                "Document pool sizing in the rollback runbook",
                actor=FRANK,
                owner=DAN,
                due_on=date(2026, 3, 6),
            )
            core.add_action_item(
                s,
                policy,
                iid,
                "Restore the pool size to 50",
                actor=FRANK,
                owner=ERIN,
                due_on=date(2026, 3, 4),
            )
        at(55)
        with db.transaction() as s:
            core.complete_action_item(s, policy, iid, 4, actor=ERIN)
        at(65)
        with db.transaction() as s:
            return core.resolve_incident(
                s, policy, iid, actor=FRANK, text="Error rates at baseline for 30 minutes"
            ).incident
