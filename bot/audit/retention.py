"""Retention: export closed incidents' evidence, and remove them from the database when the
policy says so, leaving a chained tombstone.

Nothing happens by default: ``[retention]`` has no ``export_after`` / ``remove_after`` unless the
team sets them, and ``firebreak audit retention`` only lists what is due until it is given
``--apply``. An incident is removed only after a bundle of it exists in the archive directory,
verifies, and has the same chain head as the database (an event recorded after the export means
a fresh export first).

Removal, in one transaction per incident: a ``retention_tombstone`` event is appended through the
core (so it is chained to the last event, and carries the removed chain's head, the event count
and the bundle's SHA-256), then every other row that belongs to the incident is deleted (the
append-only guard lifted inside that transaction only), and the incident row keeps only its
number, severity, status and milestones, and its chain head becomes the tombstone (one event).
``audit verify`` starts that incident's chain at the tombstone, whose ``prev_hash`` is the head
recorded in the exported bundle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select, update
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from bot import incidents as core
from bot.audit import guard
from bot.audit.bundle import Export, verify_bundle, write_bundle
from bot.audit.records import INCIDENTS, TIMELINE, related_tables, still_referenced
from bot.audit.verify import chain_head
from bot.clock import as_utc, utcnow
from bot.config import Policy
from bot.db import Database
from bot.errors import ConfigError, FirebreakError
from bot.models import EventKind, Incident, TimelineEvent
from bot.outputs import check_output_dir

REMOVED_TITLE = "(removed under the retention policy)"


class RetentionError(FirebreakError):
    """A removal was refused; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Due:
    number: int
    incident_id: int
    closed_at: datetime
    export: bool
    remove: bool
    bundle: Path
    exported: bool
    """A bundle of it is already in the archive directory."""

    def describe(self) -> str:
        what = []
        if self.export and not self.exported:
            what.append("export due")
        elif self.exported:
            what.append("exported")
        if self.remove:
            what.append("removal due" + ("" if self.exported else " (exports first)"))
        return f"INC-{self.number} closed {self.closed_at:%Y-%m-%d}: {', '.join(what)}"


def archive_dir(policy: Policy) -> Path:
    return policy.resolve_path(policy.retention.archive_dir)


def check_archive_dir(policy: Policy) -> None:
    """Refuse (``ConfigError``, ``file:line: retention.archive_dir: ...``) an archive directory
    bundles could not be written to, when the policy exports or removes anything. It must
    exist: a typo of the archive's mount would otherwise become a new directory, and the
    incidents exported there would then be removed."""
    rules = policy.retention
    if rules.export_after is None and rules.remove_after is None:
        return
    try:
        check_output_dir(archive_dir(policy), create=False)
    except FirebreakError as exc:
        raise ConfigError(
            f"{policy.where('retention', 'archive_dir')}: retention.archive_dir: {exc}"
        ) from None


def bundle_path(policy: Policy, number: int) -> Path:
    return archive_dir(policy) / f"INC-{number}.zip"


def _tombstoned(session: Session) -> set[int]:
    query = select(col(TimelineEvent.incident_id)).where(
        col(TimelineEvent.kind) == EventKind.RETENTION_TOMBSTONE
    )
    return {int(incident_id) for incident_id in session.execute(query).scalars()}


def due(session: Session, policy: Policy, *, now: datetime | None = None) -> list[Due]:
    """Closed incidents the retention policy wants exported or removed now."""
    now = as_utc(now or utcnow())
    rules = policy.retention
    if rules.export_after is None and rules.remove_after is None:
        return []
    removed = _tombstoned(session)
    closed = session.exec(
        sm_select(Incident)
        .where(col(Incident.closed_at).is_not(None))
        .order_by(col(Incident.number))
    ).all()
    out = []
    for incident in closed:
        assert incident.id is not None and incident.closed_at is not None
        if incident.id in removed:
            continue
        age = now - as_utc(incident.closed_at)
        export = rules.export_after is not None and age >= rules.export_after
        remove = rules.remove_after is not None and age >= rules.remove_after
        if export or remove:
            path = bundle_path(policy, incident.number)
            out.append(
                Due(
                    incident.number,
                    incident.id,
                    as_utc(incident.closed_at),
                    export,
                    remove,
                    path,
                    path.exists(),
                )
            )
    return out


def export_incident(
    db: Database, policy: Policy, item: Due, signing_key: Ed25519PrivateKey | None
) -> Export:
    """Write the incident's bundle, signed with ``signing_key`` (parsed once by the caller, for
    every incident it exports). The archive directory is not created (``check_archive_dir``)."""
    with db.read(snapshot=True) as session:
        return write_bundle(session, policy, item.incident_id, item.bundle, signing_key=signing_key)


def remove_incident(db: Database, policy: Policy, item: Due, *, now: datetime | None = None) -> int:
    """Remove one exported incident, leaving a tombstone; returns the number of events removed.

    Refuses (``RetentionError``) when the bundle is missing, does not verify, or no longer
    matches the database."""
    now = as_utc(now or utcnow())
    if not item.bundle.exists():
        raise RetentionError(f"INC-{item.number}: no bundle at {item.bundle}; export it first")
    report = verify_bundle(item.bundle)
    if not report.ok:
        raise RetentionError(
            f"INC-{item.number}: {item.bundle} does not verify ({report.problems[0]}); "
            "nothing removed"
        )
    digest = hashlib.sha256(item.bundle.read_bytes()).hexdigest()
    with db.transaction() as session:
        stored = core.lock_incident(session, item.incident_id)
        events, head = chain_head(session, item.incident_id)
        if head != report.chain_head or events != report.events:
            raise RetentionError(
                f"INC-{item.number}: the timeline changed since {item.bundle.name} was written "
                "(export again); nothing removed"
            )
        if (stored.chain_head, stored.chain_events) != (head, events):
            # Its latest events were deleted (or written around Firebreak): removing it would
            # remove the evidence with them.
            raise RetentionError(
                f"INC-{item.number}: its timeline does not end at the head on its incident row "
                f"(`firebreak audit verify INC-{item.number}` names the break); nothing removed"
            )
        change = core.record_timeline_event(
            session,
            policy,
            item.incident_id,
            kind=EventKind.RETENTION_TOMBSTONE,
            text=(
                f"Removed under the retention policy after export to {item.bundle.name}: "
                f"{events} events, chain head {head}"
            ),
            data={
                "removed_events": events,
                "chain_head": head,
                "bundle": item.bundle.name,
                "bundle_sha256": digest,
                "closed_at": item.closed_at.isoformat(),
            },
            key=f"retention:{item.incident_id}",
            now=now,
        )
        tombstone = change.event
        assert tombstone is not None and tombstone.id is not None
        guard.lift(session, f"retention INC-{item.number}")
        for related in reversed(related_tables()):
            table = related.table
            if table.name == INCIDENTS:
                continue
            if table.name == TIMELINE:
                session.execute(
                    delete(table).where(
                        table.c.incident_id == item.incident_id, table.c.id != tombstone.id
                    )
                )
            elif related.parent is None:
                shared = still_referenced(table)
                if shared is not None:
                    # Rows another incident's rows still point at (an alert group whose
                    # earlier episode was another incident) stay, as that incident's.
                    session.execute(
                        update(table)
                        .where(table.c.incident_id == item.incident_id, shared)
                        .values(incident_id=None)
                    )
                session.execute(delete(table).where(table.c.incident_id == item.incident_id))
            else:
                parent = related.parent
                ids = select(parent.c.id).where(parent.c.incident_id == item.incident_id)
                session.execute(delete(table).where(table.c[related.column].in_(ids)))
        guard.restore(session)
        # The chain now starts at the tombstone: the head stays, the count is its one event.
        # (A statement, not the ORM object: the row was changed behind the ORM's back by the
        # append.)
        incidents = Incident.__table__  # type: ignore[attr-defined]
        session.execute(
            update(incidents)
            .where(incidents.c.id == item.incident_id)
            .values(chain_head=tombstone.hash, chain_events=1)
        )
        incident = core.lock_incident(session, item.incident_id)
        incident.title = REMOVED_TITLE
        incident.summary = ""
        incident.service = None
        incident.slack_state = {}
        incident.slack_setup_error = None
        session.add(incident)
    return events
