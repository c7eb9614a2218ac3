"""Postmortem drafts generated from what really happened.

When an incident is closed (and whenever someone asks) Firebreak writes a postmortem draft in
Markdown from the incident's milestones, roles, timeline, runbooks and action items. The facts
are filled in; the questions only people can answer are left as prompts in italics.

Why it is built this way:

* **Versions, never overwrites.** Each generation stores a new ``Postmortem`` row (v1, v2, ...)
  and keeps the earlier ones, because people edit a draft while the timeline keeps growing.
  The incident row is locked while the next number is taken, so two generations at once get
  two numbers instead of colliding.
* **Idempotent.** Every generation carries a key (``generation_key``). Closing twice, a retried
  Slack command or a second replica hand in the same key and get the stored version back; no
  second row, file or timeline entry is written.
* **Templates are the team's, data stays data.** The draft is rendered with Jinja2 from
  ``postmortem.md.j2`` in ``[postmortem] template_dir`` (the built-in one otherwise), in a
  sandbox with strict undefined variables and no autoescaping (this is Markdown, not HTML). The
  template receives plain dataclasses; incident text is only ever a value, so a title such as
  ``{{ 7*7 }}`` prints as written. A team template that fails (syntax error, unknown variable,
  runtime error) never costs the postmortem: the error, with file and line, is logged and
  stored on the version, and the built-in template is used.
* **Files are a copy.** The database row is the record. The file in ``[postmortem] output_dir``
  (``INC-42-v2.md``) is written atomically (temporary file, then rename) after the row is
  stored; if writing fails the version is kept and the failure is reported. If the transaction
  is rolled back after the write, the file stays and is replaced by the next generation of that
  version number.

The package, by concept: ``facts`` (what a template receives), ``context`` (those facts
gathered from the database), ``render`` (Jinja2, sandboxed), ``bounds`` (the limits a render
runs within), ``store`` (versions, generation
keys, files) and ``cli`` (``firebreak postmortem``, imported by the command line only).

Variables a template receives (see ``PostmortemContext``): ``incident``, ``version``,
``generated_at``, ``generated_by``, ``timezone``, ``authors``, ``milestones`` and ``metrics``
(dicts by key), ``timeline`` (days of entries, UTC), ``timeline_count``, ``responders``,
``roles``, ``handovers``, ``runbooks``, ``action_items``, ``links``, ``clocks``, ``reopens``
(each with ``resolved``, ``reopened``, ``reopened_at``, ``by``, ``reason``, ``mitigated``);
their fields are in docs/postmortems.md. A team template renders within limits
(``bounds``). Filters: ``cell`` (a table cell), ``inline`` (one line), ``block`` (a
paragraph), ``item`` (a list item's text), ``url`` and ``label`` (a Markdown link). A team
template can also ``{% extends
"firebreak/postmortem.md.j2" %}`` and override one block of the built-in template.
"""

from __future__ import annotations

import logging

from bot.markup import NameResolver
from bot.postmortem.context import build_context, look_up_names
from bot.postmortem.facts import PostmortemContext
from bot.postmortem.render import Rendered, render_context, render_postmortem
from bot.postmortem.store import (
    close_generation_key,
    generate_on_close,
    generate_postmortem,
    list_postmortems,
    postmortem_file_name,
    write_file_atomically,
)

__all__ = [
    "NameResolver",
    "PostmortemContext",
    "Rendered",
    "build_context",
    "close_generation_key",
    "generate_on_close",
    "generate_postmortem",
    "list_postmortems",
    "look_up_names",
    "postmortem_file_name",
    "render_context",
    "render_postmortem",
    "write_file_atomically",
]

# The command line reports problems itself; without this, Python's last-resort handler would
# print each warning a second time when logging is not configured.
logging.getLogger(__name__).addHandler(logging.NullHandler())
