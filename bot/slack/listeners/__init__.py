"""Bolt listeners, one module per kind of request, each with its ``register(app)``:

* ``commands``: ``/incident`` and the explicit table of its subcommands
* ``interactions``: buttons and selects, form submissions (each form's validation beside its
  handler), shortcuts
* ``events``: pushpin captures, welcomes, the App Home
* ``base``: what they share: recording a request before it is acknowledged, the worker pools,
  and operations several kinds use (declare, change status, post an update, give a role)
* ``context``: who asked and how to answer them

A request that changes something is written to the database before it is acknowledged
(``bot.slack.inbound``) and processed by the effect runner, on this replica or, if this one dies,
another. Reads (``status``, ``list``, ``help``...) and forms (a ``trigger_id`` lives 3 seconds) run
on the worker pools right after the acknowledgement.
"""

from __future__ import annotations

from concurrent.futures import Executor

from slack_bolt import App

from bot.slack.flows import IncidentFlows
from bot.slack.inbound import Inbox
from bot.slack.listeners import commands, events, interactions
from bot.slack.listeners.context import Ctx, Respond, guarded, reply, split_title
from bot.slack.listeners.events import EventListeners
from bot.slack.listeners.interactions import InteractionListeners


class Listeners(InteractionListeners, EventListeners):
    """Every listener of one Bolt app (the kinds above, over one shared state)."""

    def __init__(self, flows: IncidentFlows, work: Executor, forms: Executor, inbox: Inbox) -> None:
        super().__init__(flows, work, forms, inbox)
        # What a recorded request of each kind does when the effect runner processes it.
        inbox.processors.update(
            {
                "command": self.process_command,
                "action": self.process_action,
                "view": self.process_view,
                "shortcut": self.process_shortcut,
                "event": self.process_event,
            }
        )


def register(app: App, listeners: Listeners) -> None:
    """Each kind registers its own listeners, Bolt's way (by kind and id)."""
    commands.register(app, listeners)
    interactions.register(app, listeners)
    events.register(app, listeners)


__all__ = ["Ctx", "Listeners", "Respond", "guarded", "register", "reply", "split_title"]
