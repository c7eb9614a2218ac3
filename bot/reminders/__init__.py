"""Reminders and escalations that survive restarts and are sent once, however many replicas run.

* ``schedule``: what is due, kept in step with the timeline (the core calls it for every event)
* ``evaluate``: what a due reminder says, as plain notices, and when it is due next
* ``worker``: claiming due reminders and turning them into timeline events and Slack effects
* ``actions``: snooze and stop
* ``targets``: escalation targets (people, user groups)

The package re-exports ``schedule``'s names (what other packages keep in step).
"""

from bot.reminders.hours import next_working_time
from bot.reminders.schedule import (
    ACK,
    ACTIONS,
    CANCELLED,
    CLAIMED,
    CLOSE,
    DIGEST,
    LIVE_STATES,
    PENDING,
    SENT,
    STEP,
    STOPPED,
    UPDATE,
    ack_key,
    cancel_reminders,
    claim_due_reminders,
    close_key,
    get_reminder,
    incident_reminders,
    on_timeline_event,
    release_claims,
    schedule_reminder,
    seed_recurring_reminders,
    snooze_minutes,
    step_key,
    update_key,
)

__all__ = [
    "ACK",
    "ACTIONS",
    "CANCELLED",
    "CLAIMED",
    "CLOSE",
    "DIGEST",
    "LIVE_STATES",
    "PENDING",
    "SENT",
    "STEP",
    "STOPPED",
    "UPDATE",
    "ack_key",
    "cancel_reminders",
    "claim_due_reminders",
    "close_key",
    "get_reminder",
    "incident_reminders",
    "next_working_time",
    "on_timeline_event",
    "release_claims",
    "schedule_reminder",
    "seed_recurring_reminders",
    "snooze_minutes",
    "step_key",
    "update_key",
]
