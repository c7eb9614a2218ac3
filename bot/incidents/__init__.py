"""The incident core: every state change of an incident and the timeline event that records it.

It knows nothing of Slack. Callers wrap each call in ``Database.transaction()``; the change, its
timeline event, and everything the event causes (reminders re-timed, Slack effects queued) are
written in that one transaction. The modules, by concept:

* ``text``: input hygiene (limits, normalisation, id checks)
* ``queries``: reading incidents, roles and the timeline
* ``timeline``: the incident lock, the one idempotency guard, appending events, notes, captures
* ``lifecycle``: declare, severity, status, acknowledgement, roles
* ``actions``: action items
* ``chat``: where the incident lives in chat (its channel, its messages)
* ``metrics``: durations computed from the milestones

This package re-exports their public names, so callers write ``incidents.declare_incident``.
"""

from bot.durations import humanize_duration
from bot.incidents.actions import add_action_item, complete_action_item
from bot.incidents.chat import (
    attach_channel,
    change_channel_id,
    channel_archived,
    channel_deleted,
    channel_lost,
    channel_shared,
    channel_unusable,
    record_channel_archived,
    record_channel_lost,
    record_channel_regained,
    record_channel_shared,
    rename_channel,
    save_slack_refs,
)
from bot.incidents.lifecycle import (
    ReopenRefused,
    acknowledge_incident,
    allowed_next_statuses,
    assign_role,
    can_close,
    can_resolve,
    change_severity,
    change_status,
    close_incident,
    declare_incident,
    is_active,
    mitigate_incident,
    reopen_incident,
    require_active,
    resolve_incident,
    take_command,
    unassign_role,
)
from bot.incidents.metrics import IncidentMetrics, incident_metrics
from bot.incidents.numbers import hold_counter, number_free
from bot.incidents.queries import (
    NUMBER_MAX,
    current_roles,
    earlier_event,
    find_event_by_source,
    find_incident,
    find_incident_by_channel,
    find_incident_by_channel_name,
    find_recent_duplicate,
    get_incident,
    list_action_items,
    list_incidents,
    parse_incident_ref,
    role_history,
    timeline,
)
from bot.incidents.text import (
    ACTION_TEXT_MAX,
    INCIDENT_COUNTER,
    SERVICE_MAX,
    SUMMARY_MAX,
    TEXT_MAX,
    TITLE_MAX,
    clean_text,
    shows_something,
)
from bot.incidents.timeline import (
    Change,
    add_note,
    append_event,
    begin_change,
    capture_message,
    lock_incident,
    post_status_update,
    record_timeline_event,
    require_open,
    retract_event,
    withdraw_capture,
)

__all__ = [
    "ACTION_TEXT_MAX",
    "INCIDENT_COUNTER",
    "NUMBER_MAX",
    "SERVICE_MAX",
    "SUMMARY_MAX",
    "TEXT_MAX",
    "TITLE_MAX",
    "Change",
    "IncidentMetrics",
    "ReopenRefused",
    "acknowledge_incident",
    "add_action_item",
    "add_note",
    "allowed_next_statuses",
    "append_event",
    "assign_role",
    "attach_channel",
    "begin_change",
    "can_close",
    "can_resolve",
    "capture_message",
    "change_channel_id",
    "change_severity",
    "change_status",
    "channel_archived",
    "channel_deleted",
    "channel_lost",
    "channel_shared",
    "channel_unusable",
    "clean_text",
    "close_incident",
    "complete_action_item",
    "current_roles",
    "declare_incident",
    "earlier_event",
    "find_event_by_source",
    "find_incident",
    "find_incident_by_channel",
    "find_incident_by_channel_name",
    "find_recent_duplicate",
    "get_incident",
    "hold_counter",
    "humanize_duration",
    "incident_metrics",
    "is_active",
    "list_action_items",
    "list_incidents",
    "lock_incident",
    "mitigate_incident",
    "number_free",
    "parse_incident_ref",
    "post_status_update",
    "record_channel_archived",
    "record_channel_lost",
    "record_channel_regained",
    "record_channel_shared",
    "record_timeline_event",
    "rename_channel",
    "reopen_incident",
    "require_active",
    "require_open",
    "resolve_incident",
    "retract_event",
    "role_history",
    "save_slack_refs",
    "shows_something",
    "take_command",
    "timeline",
    "unassign_role",
    "withdraw_capture",
]
