"""Generating and storing postmortem versions: generation keys, numbered versions kept side by
side, and the Markdown file written atomically beside the database row."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot import incidents
from bot.clock import as_utc, utcnow
from bot.config import Policy
from bot.errors import InvalidInput
from bot.incidents import Change
from bot.keys import fit_key
from bot.markup import NameResolver
from bot.models import EventKind, Incident, Postmortem, TimelineEvent
from bot.postmortem.context import build_context
from bot.postmortem.names import RememberedNames
from bot.postmortem.render import render_context

logger = logging.getLogger("bot.postmortem")
"""One logger for the package (its name is the one operators filter on)."""


def _bounded(key: str, label: str) -> str:
    key = (key or "").strip()
    if not key:
        raise InvalidInput(f"The {label} is empty.")
    return fit_key(key)


def close_generation_key(incident: Incident, closed_event: TimelineEvent) -> str:
    """The key for the draft generated when an incident is closed.

    It names the event that closed the incident, so a repeated close (a retried Slack command,
    a double click, a second replica) asks for the same version, while closing again after a
    reopen asks for a new one."""
    if closed_event.id is None or incident.id is None:
        raise InvalidInput("The closing event has not been stored yet.")
    return f"postmortem:close:{incident.id}:{closed_event.id}"


def generate_on_close(
    session: Session,
    policy: Policy,
    change: Change,
    *,
    actor: str,
    names: NameResolver | None = None,
    now: datetime | None = None,
) -> Postmortem | None:
    """Call with the result of ``incidents.close_incident`` in the same transaction.

    Returns the draft when the policy asks for one on close and this change closed the
    incident; ``None`` when nothing was closed (already closed, a repeat) or ``on_close`` is
    off."""
    event = change.event
    if (
        not policy.postmortem.on_close
        or event is None
        or event.kind != EventKind.STATUS_CHANGED
        or event.data.get("phase") != "closed"
        or change.incident.id is None
    ):
        return None
    return generate_postmortem(
        session,
        policy,
        change.incident.id,
        actor=actor,
        key=close_generation_key(change.incident, event),
        names=names,
        now=now,
    )


@dataclass(frozen=True)
class _Generation:
    postmortem: Postmortem
    created: bool
    file_error: str | None


def generate_postmortem(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    key: str,
    names: NameResolver | None = None,
    now: datetime | None = None,
) -> Postmortem:
    """Render and store the next version of the incident's postmortem draft.

    A ``key`` seen before returns that version and writes nothing. Otherwise the incident row
    is locked, the version number taken, the draft stored, the file written (a failure is
    logged and recorded on the timeline entry; the version is kept) and a
    ``postmortem_generated`` event recorded, all in the caller's transaction."""
    return _generate(
        session, policy, incident_id, actor=actor, key=key, names=names, now=now
    ).postmortem


def _generate(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    actor: str,
    key: str,
    names: NameResolver | None = None,
    now: datetime | None = None,
) -> _Generation:
    key = _bounded(key, "postmortem generation key")
    actor = (actor or "").strip()
    if not actor or len(actor) > 64:
        raise InvalidInput(f"Not a valid user id: {actor[:40]!r}.")
    earlier = _by_key(session, key, incident_id)
    if earlier is not None:
        return _Generation(earlier, False, None)
    incident = incidents.lock_incident(session, incident_id)
    now = as_utc(now) if now is not None else utcnow()  # once locked: stamped in lock order
    # The same key may have been committed while we waited for the lock.
    earlier = _by_key(session, key, incident_id)
    if earlier is not None:
        return _Generation(earlier, False, None)

    version = 1 + (
        session.exec(
            select(func.max(Postmortem.version)).where(Postmortem.incident_id == incident_id)
        ).one()
        or 0
    )
    shown = RememberedNames(names, session, incident_id)
    context = build_context(
        session, policy, incident, version=version, actor=actor, names=shown, now=now
    )
    rendered = render_context(policy, context)
    postmortem = Postmortem(
        incident_id=incident_id,
        version=version,
        generation_key=key,
        markdown=rendered.markdown,
        template=rendered.template,
        template_error=rendered.template_error,
        created_at=now,
        created_by=actor,
    )
    session.add(postmortem)
    session.flush()  # the row is valid before anything is written to disk

    file_error = None
    if policy.postmortem.output_dir is not None:
        path = policy.resolve_path(policy.postmortem.output_dir) / postmortem_file_name(
            incident, version
        )
        try:
            write_file_atomically(path, rendered.markdown)
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            file_error = f"{path}: cannot write the postmortem draft: {reason}"
            logger.warning("%s (version %d is stored)", file_error, version)
        else:
            postmortem.file_path = str(path)[:1000]
            session.add(postmortem)
            session.flush()

    incidents.record_timeline_event(
        session,
        policy,
        incident_id,
        kind=EventKind.POSTMORTEM_GENERATED,
        text=f"Postmortem draft v{version} generated",
        actor=actor,
        data={
            "postmortem": postmortem.id,
            "version": version,
            "template": rendered.template,
            "template_error": rendered.template_error,
            "file": postmortem.file_path,
            "file_error": file_error,
            "names": shown.kept(),
        },
        key=_bounded(f"postmortem:{key}", "timeline key"),
        now=now,
    )
    return _Generation(postmortem, True, file_error)


def _by_key(session: Session, key: str, incident_id: int) -> Postmortem | None:
    earlier = session.exec(select(Postmortem).where(Postmortem.generation_key == key)).first()
    if earlier is not None and earlier.incident_id != incident_id:
        raise InvalidInput("That request was already used for another incident.")
    return earlier


def list_postmortems(session: Session, incident_id: int) -> list[Postmortem]:
    """Every stored version of the incident's postmortem, oldest first."""
    return list(
        session.exec(
            select(Postmortem)
            .where(Postmortem.incident_id == incident_id)
            .order_by(col(Postmortem.version))
        ).all()
    )


def postmortem_file_name(incident: Incident, version: int) -> str:
    return f"{incident.ref}-v{version}.md"


def write_file_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
