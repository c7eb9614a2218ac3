"""Text a person typed, as Slack hands it to an app.

Slack reserves ``&``, ``<`` and ``>`` as control characters in message text ("Formatting text for
app surfaces", section "Escaping text": they are sent as ``&amp;``, ``&lt;`` and ``&gt;`` unless
used for Slack's own markup). A slash command's ``text`` and a person's message (its ``text`` in
``message`` events, ``conversations.history`` and shortcut payloads) use that same escaping. What
the client turned into tokens stays a token: with "Escape channels, users, and links sent to your
app" on (``should_escape: true`` in slack-manifest.yaml) mentions, channels and links arrive as
``<@U123|name>``, ``<#C123|name>``, ``<!subteam^S1|@sre>``, ``<https://x|label>``.

Values of ``plain_text_input`` elements in ``view_submission`` / ``block_actions`` payloads are not
message text: Slack sends them as typed, so the simulator leaves them alone.
"""

from __future__ import annotations

import re

# What the client makes a token of; tests write these as the payload shows them. Each may carry
# a ``|label``. Anything else between < and > is text the person typed.
_CLIENT_TOKEN = re.compile(
    r"<(?:[@#][UWCG][A-Z0-9]+"
    r"|!(?:here|channel|everyone)"
    r"|!(?:subteam|date)\^[^<>|\n]+"
    r"|(?:https?://|mailto:)[^<>|\s]+)"
    r"(?:\|[^<>\n]*)?>"
)
# An entity Slack already wrote (a test copying a payload) is left as it is, never escaped twice.
_ENTITY = re.compile(r"&(?:amp|lt|gt);")
# Left to right: a client token or an entity stays as it is, a reserved character is escaped.
_TYPED = re.compile(f"{_CLIENT_TOKEN.pattern}|{_ENTITY.pattern}|[&<>]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt);)")


def escape_typed(text: str) -> str:
    """``text`` as Slack sends what a person typed: ``&`` (unless it already starts ``&amp;``,
    ``&lt;`` or ``&gt;``), ``<`` and ``>`` become entities, except in the tokens the Slack client
    makes for mentions, channels, broadcasts, user groups, dates and links (see the module
    docstring for the rule); inside those, only an ``&`` (in a URL or a label) is escaped.
    ``p99 < 5ms & <https://x|dash>`` -> ``p99 &lt; 5ms &amp; <https://x|dash>``."""
    return _TYPED.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    found = match[0]
    if len(found) > 1 and found[0] == "<":  # a client token: an ``&`` in it is escaped too
        return _BARE_AMPERSAND.sub("&amp;", found)
    return _ESCAPES.get(found, found)


_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}


def rich_text_elements(escaped: str) -> list[dict[str, str]]:
    """The ``rich_text_section`` elements Slack attaches to a message whose ``text`` is
    ``escaped`` (from :func:`escape_typed`): in rich text, typed characters are not escaped and
    each client token is an element of its own (``user``, ``channel``, ``broadcast``,
    ``usergroup``, ``link``)."""
    elements: list[dict[str, str]] = []
    position = 0
    for token in _CLIENT_TOKEN.finditer(escaped):
        _add_text(elements, escaped[position : token.start()])
        elements.append(_token_element(token.group(0)[1:-1]))
        position = token.end()
    _add_text(elements, escaped[position:])
    return elements


def _add_text(elements: list[dict[str, str]], escaped: str) -> None:
    if escaped:
        elements.append({"type": "text", "text": _unescaped(escaped)})


def _token_element(body: str) -> dict[str, str]:
    target, _, label = body.partition("|")
    if target[0] == "@":
        return {"type": "user", "user_id": target[1:]}
    if target[0] == "#":
        return {"type": "channel", "channel_id": target[1:]}
    if target.startswith("!subteam^"):
        return {"type": "usergroup", "usergroup_id": target.removeprefix("!subteam^")}
    if target.startswith("!date^"):
        return {"type": "date", "timestamp": target.removeprefix("!date^").split("^")[0]}
    if target[0] == "!":
        return {"type": "broadcast", "range": target[1:]}
    url, text = _unescaped(target), _unescaped(label)
    return {"type": "link", "url": url, **({"text": text} if text else {})}


def _unescaped(escaped: str) -> str:
    return _ENTITY.sub(lambda m: _ENTITIES[m[0]], escaped)
