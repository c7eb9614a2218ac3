"""Postmortem effects: the draft written after a close, and its upload to the incident
channel (checked with ``files.info`` before it is shared again after an ambiguous failure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from bot import incidents as core
from bot import postmortem
from bot.clock import utcnow
from bot.effects import kinds, store
from bot.effects.runner import Done, PermanentError
from bot.effects.store import Claimed
from bot.models import Postmortem, TimelineEvent
from bot.runtime import Firebreak
from bot.slack.gateway import SlackGateway


@dataclass
class PostmortemEffects:
    fb: Firebreak
    names: postmortem.NameResolver | None = None

    @property
    def gateway(self) -> SlackGateway:
        return self.fb.gateway

    def draft(self, item: Claimed) -> Done:
        """Draft the postmortem after a close (its own transaction: a failing draft never
        keeps an incident open); the close event's key makes a repeated close draft once."""
        assert item.incident_id is not None
        policy = self.fb.policy
        if not policy.postmortem.on_close:
            return Done({"skipped": "postmortem.on_close is off"})
        event_id = int(item.data.get("event") or 0)
        with self.fb.db.read() as session:
            names = postmortem.look_up_names(session, policy, item.incident_id, self.names)
        with self.fb.db.transaction() as session:
            incident = core.get_incident(session, item.incident_id)
            event = session.get(TimelineEvent, event_id)
            if event is None:
                return Done({"skipped": "no closing event"})
            draft = postmortem.generate_postmortem(
                session,
                policy,
                item.incident_id,
                actor=event.actor_id or "firebreak",
                key=postmortem.close_generation_key(incident, event),
                names=names,
            )
            queue_upload(session, draft)
        return Done({"postmortem": draft.id, "version": draft.version})

    def upload(self, item: Claimed) -> Done:
        postmortem_id = int(item.data.get("postmortem_id") or 0)
        with self.fb.db.read() as session:
            draft = session.get(Postmortem, postmortem_id)
            incident = core.get_incident(session, draft.incident_id) if draft else None
        if draft is None or incident is None:
            return Done({"skipped": "no such postmortem"})
        channel = incident.slack_channel_id
        if channel is None:
            return Done({"skipped": "no channel"})
        if core.channel_deleted(incident):
            return Done({"skipped": "the incident's channel was deleted"})
        if core.channel_archived(incident) and not draft.slack_file_id:
            # Slack would take the file, then refuse to share it there, leaving it nowhere: the
            # effect fails (told once with the channel's other failures) and `/incident retry`
            # uploads it once the channel is unarchived.
            raise PermanentError(
                f"The incident's channel is archived (is_archived), so postmortem draft "
                f"v{draft.version} was not uploaded there: it is in Firebreak "
                f"(`firebreak postmortem {incident.ref}`). Unarchive the channel and type "
                f"`/incident {incident.ref} retry` to upload it.",
                reason="is_archived",
            )
        if core.channel_shared(incident):
            # The draft quotes the whole timeline, notes never posted in the channel included:
            # not for another organisation's eyes. It stays in Firebreak (the console).
            return Done({"skipped": "the channel is shared with another organisation"})
        if draft.slack_file_id:
            return Done({"file": draft.slack_file_id})
        file_id = item.result.get("file")
        if file_id and self.gateway.file_shared_in(str(file_id), channel):
            return Done({"file": file_id}, then=_save_file(postmortem_id, str(file_id)))
        file_id = self.gateway.start_upload(
            f"{incident.ref}-postmortem-v{draft.version}.md", draft.markdown.encode("utf-8")
        )
        with self.fb.db.transaction() as session:
            store.save_progress(session, item.id, item.by, {"file": file_id}, now=utcnow())
        note = (
            f" (the team template failed, the built-in one was used: {draft.template_error})"
            if draft.template_error
            else ""
        )
        self.gateway.finish_upload(
            file_id,
            channel,
            title=f"{incident.ref} postmortem draft v{draft.version}",
            comment=f":memo: Postmortem draft v{draft.version} for {incident.ref}, written "
            f"from the timeline. Fill in the italic prompts.{note}",
        )
        return Done({"file": file_id}, then=_save_file(postmortem_id, file_id))


def _save_file(postmortem_id: int, file_id: str) -> Callable[[Session], None]:
    def then(session: Session) -> None:
        stored = session.get(Postmortem, postmortem_id)
        if stored is not None and not stored.slack_file_id:
            stored.slack_file_id = file_id
            session.add(stored)

    return then


def queue_upload(session: Session, draft: Postmortem) -> None:
    """Upload a postmortem version to its incident channel, once (in the caller's
    transaction)."""
    assert draft.id is not None
    store.enqueue(
        session,
        kind=kinds.POSTMORTEM_UPLOAD,
        key=f"upload:{draft.id}",
        data={"postmortem_id": draft.id},
        incident_id=draft.incident_id,
        lane=store.incident_lane(draft.incident_id),
        now=draft.created_at,
    )
