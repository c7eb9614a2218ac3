"""Slack's Block Kit and message limits, and a validator that checks payloads against them.

Slack rejects a payload over any of these limits (``invalid_blocks``, ``msg_too_long``), which in
an incident means a summary that never appears. Firebreak's block builders are tested with this
validator, and the fake Slack server applies it to every call, so a payload Slack would reject
fails the tests first. The figures come from Slack's Block Kit reference; lengths are counted
by ``text_length`` (UTF-16 code units, as Slack's clients count), and texts are cut by
``truncate`` and ``chunk_text`` only between grapheme clusters.

The validator is deliberately a little stricter than Slack where that costs nothing: ``action_id``
values must be unique across the whole message or view (Slack requires it per block).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import regex

from bot.markup import escape_mrkdwn as escape_mrkdwn  # the one rule, for the Slack layer

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
MESSAGE_TEXT = 40_000
MARKDOWN_BLOCKS_TOTAL = 12_000
MESSAGE_BLOCKS_TEXT = 12_000
"""Text across all blocks of one message. Undocumented, but Slack answers
``msg_blocks_too_long`` past roughly this much text even when every block is within its own
limit; builders aim for 10,000 to leave room."""
BLOCKS_TEXT_BUDGET = 10_000
SECTION_TEXT = 3_000
SECTION_FIELDS = 10
SECTION_FIELD_TEXT = 2_000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
CONTEXT_TEXT = 3_000
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2_000
BUTTON_URL = 3_000
ID_LENGTH = 255
SELECT_OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150
CHOICE_OPTIONS = 10
PLACEHOLDER_TEXT = 150
MODAL_TITLE = 24
MODAL_BUTTON = 24
PRIVATE_METADATA = 3_000
INPUT_LABEL = 2_000
INPUT_HINT = 2_000
PLAIN_TEXT_INPUT_MAX = 3_000
IMAGE_URL = 3_000
ALT_TEXT = 2_000
TOPIC = 250
PURPOSE = 250
CHANNEL_NAME = 80

_BUTTON_STYLES = {"primary", "danger"}
_SELECTS = {
    "static_select",
    "multi_static_select",
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
}
_INPUT_ELEMENTS = _SELECTS | {
    "plain_text_input",
    "checkboxes",
    "radio_buttons",
    "datepicker",
    "datetimepicker",
    "timepicker",
    "email_text_input",
    "url_text_input",
    "number_input",
    "rich_text_input",
}
_ACTION_ELEMENTS = _SELECTS | {
    "button",
    "overflow",
    "checkboxes",
    "radio_buttons",
    "datepicker",
    "datetimepicker",
    "timepicker",
}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.block_ids: set[str] = set()
        self.action_ids: set[str] = set()
        self.markdown_total = 0

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def length(self, path: str, value: Any, limit: int, *, required: bool = True) -> None:
        if value is None:
            if required:
                self.error(path, "is required")
            return
        if not isinstance(value, str):
            self.error(path, "must be a string")
            return
        if required and len(value) == 0:
            self.error(path, "must not be empty")
        if text_length(value) > limit:
            self.error(path, f"must be at most {limit} characters (got {text_length(value)})")

    def text(
        self,
        path: str,
        obj: Any,
        limit: int,
        *,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        if obj is None:
            if required:
                self.error(path, "is required")
            return
        if not isinstance(obj, Mapping):
            self.error(path, "must be a text object")
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self.error(f"{path}.type", "must be plain_text or mrkdwn")
        elif plain_only and kind != "plain_text":
            self.error(f"{path}.type", "must be plain_text")
        self.length(f"{path}.text", obj.get("text"), limit)

    def ids(self, path: str, obj: Mapping[str, Any]) -> None:
        action_id = obj.get("action_id")
        if action_id is not None:
            self.length(f"{path}.action_id", action_id, ID_LENGTH)
            if action_id in self.action_ids:
                self.error(f"{path}.action_id", f"duplicate action_id {action_id!r}")
            self.action_ids.add(action_id)

    def option(self, path: str, option: Any) -> None:
        if not isinstance(option, Mapping):
            self.error(path, "must be an option object")
            return
        self.text(f"{path}.text", option.get("text"), OPTION_TEXT)
        self.length(f"{path}.value", option.get("value"), OPTION_VALUE)
        if option.get("description") is not None:
            self.text(f"{path}.description", option.get("description"), OPTION_TEXT)

    def options(self, path: str, options: Any, limit: int, *, plain_only: bool) -> None:
        if not isinstance(options, list) or not options:
            self.error(path, "must be a non-empty list")
            return
        if len(options) > limit:
            self.error(path, f"must have at most {limit} options (got {len(options)})")
        for i, option in enumerate(options):
            self.option(f"{path}[{i}]", option)
            if plain_only and isinstance(option, Mapping):
                text = option.get("text")
                if isinstance(text, Mapping) and text.get("type") != "plain_text":
                    self.error(f"{path}[{i}].text.type", "must be plain_text")

    def element(self, path: str, element: Any, allowed: set[str]) -> None:
        if not isinstance(element, Mapping):
            self.error(path, "must be an object")
            return
        kind = element.get("type")
        if kind not in allowed:
            self.error(f"{path}.type", f"{kind!r} is not allowed here")
            return
        self.ids(path, element)
        if element.get("placeholder") is not None:
            self.text(
                f"{path}.placeholder", element["placeholder"], PLACEHOLDER_TEXT, plain_only=True
            )
        if kind == "button":
            self.text(f"{path}.text", element.get("text"), BUTTON_TEXT, plain_only=True)
            if "value" in element:
                self.length(f"{path}.value", element["value"], BUTTON_VALUE)
            if "url" in element:
                self.length(f"{path}.url", element["url"], BUTTON_URL)
            style = element.get("style")
            if style is not None and style not in _BUTTON_STYLES:
                self.error(f"{path}.style", "must be primary or danger")
            if element.get("confirm") is not None:
                self.confirm(f"{path}.confirm", element["confirm"])
        elif kind in ("static_select", "multi_static_select"):
            if "option_groups" in element:
                groups = element["option_groups"]
                total = sum(len(g.get("options", [])) for g in groups if isinstance(g, Mapping))
                if total > SELECT_OPTIONS:
                    self.error(f"{path}.option_groups", f"at most {SELECT_OPTIONS} options")
            else:
                self.options(
                    f"{path}.options", element.get("options"), SELECT_OPTIONS, plain_only=True
                )
            if element.get("initial_option") is not None:
                self.option(f"{path}.initial_option", element["initial_option"])
        elif kind == "overflow":
            options = element.get("options")
            self.options(f"{path}.options", options, 5, plain_only=True)
            if isinstance(options, list) and len(options) < 2:
                self.error(f"{path}.options", "an overflow menu needs 2 to 5 options")
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(
                f"{path}.options", element.get("options"), CHOICE_OPTIONS, plain_only=False
            )
        elif kind == "plain_text_input":
            max_length = element.get("max_length")
            if max_length is not None and not (
                isinstance(max_length, int) and 1 <= max_length <= PLAIN_TEXT_INPUT_MAX
            ):
                self.error(f"{path}.max_length", f"must be 1 to {PLAIN_TEXT_INPUT_MAX}")
            initial = element.get("initial_value")
            if initial is not None:
                limit = max_length if isinstance(max_length, int) else PLAIN_TEXT_INPUT_MAX
                self.length(f"{path}.initial_value", initial, limit, required=False)

    def confirm(self, path: str, confirm: Any) -> None:
        if not isinstance(confirm, Mapping):
            self.error(path, "must be a confirmation object")
            return
        self.text(f"{path}.title", confirm.get("title"), 100, plain_only=True)
        self.text(f"{path}.text", confirm.get("text"), 300)
        self.text(f"{path}.confirm", confirm.get("confirm"), 30, plain_only=True)
        self.text(f"{path}.deny", confirm.get("deny"), 30, plain_only=True)

    def block(self, path: str, block: Any, *, surface: str) -> None:
        if not isinstance(block, Mapping):
            self.error(path, "must be an object")
            return
        kind = block.get("type")
        block_id = block.get("block_id")
        if block_id is not None:
            self.length(f"{path}.block_id", block_id, ID_LENGTH)
            if block_id in self.block_ids:
                self.error(f"{path}.block_id", f"duplicate block_id {block_id!r}")
            self.block_ids.add(block_id)
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                self.error(path, "a section needs text or fields")
            if text is not None:
                self.text(f"{path}.text", text, SECTION_TEXT)
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > SECTION_FIELDS:
                    self.error(f"{path}.fields", f"must be a list of at most {SECTION_FIELDS}")
                else:
                    for i, item in enumerate(fields):
                        self.text(f"{path}.fields[{i}]", item, SECTION_FIELD_TEXT)
            if block.get("accessory") is not None:
                self.element(f"{path}.accessory", block["accessory"], _ACTION_ELEMENTS | {"image"})
        elif kind == "header":
            self.text(f"{path}.text", block.get("text"), HEADER_TEXT, plain_only=True)
        elif kind == "divider":
            pass
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.error(f"{path}.elements", "must be a non-empty list")
                return
            if len(elements) > CONTEXT_ELEMENTS:
                self.error(
                    f"{path}.elements",
                    f"must have at most {CONTEXT_ELEMENTS} elements (got {len(elements)})",
                )
            for i, element in enumerate(elements):
                if isinstance(element, Mapping) and element.get("type") == "image":
                    self.length(
                        f"{path}.elements[{i}].image_url", element.get("image_url"), IMAGE_URL
                    )
                    self.length(f"{path}.elements[{i}].alt_text", element.get("alt_text"), ALT_TEXT)
                else:
                    self.text(f"{path}.elements[{i}]", element, CONTEXT_TEXT)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.error(f"{path}.elements", "must be a non-empty list")
                return
            if len(elements) > ACTIONS_ELEMENTS:
                self.error(
                    f"{path}.elements",
                    f"must have at most {ACTIONS_ELEMENTS} elements (got {len(elements)})",
                )
            for i, element in enumerate(elements):
                self.element(f"{path}.elements[{i}]", element, _ACTION_ELEMENTS)
        elif kind == "input":
            if surface == "message":
                self.error(path, "input blocks are only allowed in modals and the Home tab")
            self.text(f"{path}.label", block.get("label"), INPUT_LABEL, plain_only=True)
            if block.get("hint") is not None:
                self.text(f"{path}.hint", block["hint"], INPUT_HINT, plain_only=True)
            self.element(f"{path}.element", block.get("element"), _INPUT_ELEMENTS)
        elif kind == "markdown":
            text = block.get("text")
            self.length(f"{path}.text", text, MARKDOWN_BLOCKS_TOTAL)
            if isinstance(text, str):
                self.markdown_total += text_length(text)
        elif kind == "image":
            self.length(f"{path}.image_url", block.get("image_url"), IMAGE_URL)
            self.length(f"{path}.alt_text", block.get("alt_text"), ALT_TEXT)
        elif kind == "rich_text":
            if not isinstance(block.get("elements"), list):
                self.error(f"{path}.elements", "must be a list")
        else:
            self.error(f"{path}.type", f"unknown block type {kind!r}")

    def blocks(self, path: str, blocks: Any, *, limit: int, surface: str) -> None:
        if not isinstance(blocks, list):
            self.error(path, "must be a list of blocks")
            return
        if len(blocks) > limit:
            self.error(path, f"must have at most {limit} blocks (got {len(blocks)})")
        for i, block in enumerate(blocks):
            self.block(f"{path}[{i}]", block, surface=surface)
        if self.markdown_total > MARKDOWN_BLOCKS_TOTAL:
            self.error(
                path,
                f"markdown blocks hold {self.markdown_total} characters; "
                f"the total limit is {MARKDOWN_BLOCKS_TOTAL}",
            )


def blocks_text_length(value: Any) -> int:
    """Characters of text anywhere in a block structure (what ``msg_blocks_too_long`` counts)."""
    if isinstance(value, Mapping):
        total = 0
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                total += text_length(item)
            elif isinstance(item, Mapping | list):
                total += blocks_text_length(item)
        return total
    if isinstance(value, list):
        return sum(blocks_text_length(item) for item in value)
    return 0


def message_errors(text: Any = None, blocks: Any = None) -> list[str]:
    """Problems Slack would reject in a ``chat.postMessage``/``chat.update`` payload."""
    checker = _Checker()
    if text is None and blocks is None:
        checker.error("text", "a message needs text or blocks")
    if text is not None:
        checker.length("text", text, MESSAGE_TEXT, required=blocks is None)
    if blocks is not None:
        checker.blocks("blocks", blocks, limit=MESSAGE_BLOCKS, surface="message")
        total = blocks_text_length(blocks)
        if total > MESSAGE_BLOCKS_TEXT:
            checker.error(
                "blocks",
                f"hold {total} characters of text; Slack rejects more than "
                f"about {MESSAGE_BLOCKS_TEXT} (msg_blocks_too_long)",
            )
    return checker.errors


def view_errors(view: Any) -> list[str]:
    """Problems Slack would reject in a view for ``views.open``/``update``/``publish``."""
    checker = _Checker()
    if not isinstance(view, Mapping):
        return ["view: must be an object"]
    kind = view.get("type")
    if kind == "modal":
        checker.text("view.title", view.get("title"), MODAL_TITLE, plain_only=True)
        for key in ("submit", "close"):
            if view.get(key) is not None:
                checker.text(f"view.{key}", view[key], MODAL_BUTTON, plain_only=True)
        has_input = any(
            isinstance(b, Mapping) and b.get("type") == "input" for b in view.get("blocks", [])
        )
        if has_input and view.get("submit") is None:
            checker.error("view.submit", "a modal with input blocks needs a submit button")
    elif kind != "home":
        checker.error("view.type", "must be modal or home")
    if view.get("private_metadata") is not None:
        checker.length(
            "view.private_metadata", view["private_metadata"], PRIVATE_METADATA, required=False
        )
    if view.get("callback_id") is not None:
        checker.length("view.callback_id", view["callback_id"], ID_LENGTH)
    checker.blocks(
        "view.blocks",
        view.get("blocks"),
        limit=VIEW_BLOCKS,
        surface="modal" if kind == "modal" else "home",
    )
    return checker.errors


def assert_valid_message(text: Any = None, blocks: Any = None) -> None:
    errors = message_errors(text, blocks)
    if errors:
        raise AssertionError("invalid Slack message:\n  " + "\n  ".join(errors))


def assert_valid_view(view: Any) -> None:
    errors = view_errors(view)
    if errors:
        raise AssertionError("invalid Slack view:\n  " + "\n  ".join(errors))


def text_length(text: str) -> int:
    """How long ``text`` is for Slack's limits, the one measure every limit here uses: UTF-16
    code units, as Slack's own clients count ("😀" is two). Slack documents its limits in
    "characters" without saying how it counts; this count is never less than the code points,
    so a text within a limit by it is within the limit by either."""
    return len(text.encode("utf-16-le")) // 2


FENCE = "```"
"""Opens and closes a code block in mrkdwn."""
_CLOSE_FENCE = "\n" + FENCE
_CLUSTER = regex.compile(r"\X")
_PREPEND = regex.compile(r"\p{Grapheme_Cluster_Break=Prepend}")


def truncate(text: str, limit: int, marker: str = "…", *, plain: bool = False) -> str:
    """Cut ``text`` to ``limit`` (``text_length``), marking the cut; never inside a grapheme
    cluster (an emoji with its skin tone or ZWJ sequence, a flag, a letter with its accents).

    ``text`` is mrkdwn unless ``plain``. Mrkdwn is also never cut inside a Slack entity such
    as ``<@U123>`` or ``<https://...|label>``, or inside ``&amp;``, ``&lt;``, ``&gt;``, and a code
    block it cuts short is closed. Plain text (a ``plain_text`` object, or a text about to be
    escaped) has no entities: a ``<`` in it is just a character."""
    if text_length(text) <= limit:
        return text
    room = max(limit - text_length(marker), 0)
    head = text[: safe_cut(text, fit_prefix(text, room), plain=plain)]
    if plain or not _open_fence(head):
        return head + marker
    head = text[: safe_cut(text, fit_prefix(text, max(room - len(_CLOSE_FENCE), 0)), plain=False)]
    return head + marker + (_CLOSE_FENCE if _open_fence(head) else "")


def fit_prefix(text: str, units: int) -> int:
    """The most code points of ``text`` whose ``text_length`` is at most ``units``."""
    cut = min(max(units, 0), len(text))
    while cut > 0 and (over := text_length(text[:cut]) - units) > 0:
        cut -= (over + 1) // 2
    return cut


def safe_cut(text: str, cut: int, *, plain: bool) -> int:
    """``cut`` moved back to a grapheme cluster's start and, in mrkdwn, out of an entity, an
    escape or a code fence's backticks."""
    cut = grapheme_start(text, cut)
    if plain:
        return cut
    fence = text.rfind(FENCE, max(cut - len(FENCE) + 1, 0), cut + len(FENCE) - 1)
    if fence != -1 and fence < cut:
        cut = fence
    return _entity_safe(text, cut)


def grapheme_start(text: str, cut: int) -> int:
    """``cut`` moved back to the start of the grapheme cluster it falls in. Only the text from
    the last sure cluster boundary before ``cut`` is segmented (usually a few characters)."""
    if cut <= 0 or cut >= len(text):
        return max(0, min(cut, len(text)))
    start = cut
    while start > 0 and not _sure_boundary(text, start):
        start -= 1
    for match in _CLUSTER.finditer(text, start):
        if match.end() > cut:
            return int(match.start())
    return cut


def _sure_boundary(text: str, at: int) -> bool:
    """Whether a grapheme cluster surely starts at ``at`` whatever precedes: an ASCII character
    (never an extender, joiner, flag half or emoji) after anything but CR or a prepended mark."""
    before = text[at - 1]
    return text[at] < "\x80" and before != "\r" and _PREPEND.match(before) is None


def _open_fence(mrkdwn: str) -> bool:
    return mrkdwn.count(FENCE) % 2 == 1


def _entity_safe(text: str, cut: int) -> int:
    """``cut`` moved back so that ``text[:cut]`` does not end inside a Slack entity
    (``<@U123>``, ``<https://...|a label>``) or an escape (``&amp;``, ``&lt;``, ``&gt;``)."""
    head = text[:cut]
    open_at = head.rfind("<")
    if open_at != -1 and head.find(">", open_at) == -1:
        head = head[:open_at]
    amp = head.rfind("&", len(head) - 4)  # the longest, "&amp;", is 5 characters
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return len(head)


def chunk_text(text: str, limit: int) -> list[str]:
    """Split mrkdwn into pieces of at most ``limit`` (``text_length``), at line breaks where
    possible, else at a space, never inside a grapheme cluster, a Slack entity or an escape. A
    code block split between pieces is closed at the end of one and reopened in the next."""
    pieces: list[str] = []
    remaining = text
    fenced = FENCE in text and limit > 8 * len(_CLOSE_FENCE)
    while text_length(remaining) > limit:
        end = fit_prefix(remaining, limit - (len(_CLOSE_FENCE) if fenced else 0))
        cut = remaining.rfind("\n", 0, end)
        if cut <= end // 2:
            cut = remaining.rfind(" ", 0, end)
        if cut <= end // 2:
            cut = end
        safe = safe_cut(remaining, cut, plain=False)
        # an entity or a cluster longer than a whole piece is cut anyway
        cut = safe or grapheme_start(remaining, cut) or max(end, 1)
        piece, rest = remaining[:cut], remaining[cut:].lstrip("\n")
        if fenced and _open_fence(piece):
            opened = piece.rfind(FENCE)
            if opened > 0 and "\n" not in piece[opened:].rstrip():
                piece, rest = piece[:opened].rstrip("\n"), remaining[opened:]  # a fence alone
            else:
                piece += _CLOSE_FENCE
                rest = (
                    rest[len(FENCE) :].lstrip("\n")
                    if rest.startswith(FENCE)
                    else (FENCE + "\n" + rest)
                )
        pieces.append(piece)
        remaining = rest
    if remaining or not pieces:
        pieces.append(remaining)
    return pieces


def iter_texts(blocks: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    """Every human-readable text in a list of blocks (for tests, previews and captures), in
    Slack's markup: a ``rich_text`` block (what people type) as the text it shows."""
    for block in blocks:
        text = block.get("text")
        if isinstance(text, Mapping):
            yield str(text.get("text", ""))
        elif isinstance(text, str):
            yield text
        for field in block.get("fields", []) or []:
            yield str(field.get("text", ""))
        if block.get("type") == "rich_text":
            yield "\n".join(_rich_text(e) for e in block.get("elements") or [])
            continue
        if block.get("type") in ("image", "video"):
            # A picture shows its title, and what its alt text says it shows (escaped: it
            # arrives as plain text, like a rich_text element's).
            title = block.get("title")
            if isinstance(title, Mapping) and title.get("text"):
                yield escape_mrkdwn(str(title["text"]))
            if block.get("alt_text"):
                yield escape_mrkdwn(str(block["alt_text"]))
        for element in block.get("elements", []) or []:
            if isinstance(element, Mapping):
                inner = element.get("text")
                if isinstance(inner, Mapping):
                    yield str(inner.get("text", ""))
                elif isinstance(inner, str):
                    yield inner


_RICH_TEXT_ENTITIES = {
    "user": lambda e: f"<@{e.get('user_id', '')}>",
    "channel": lambda e: f"<#{e.get('channel_id', '')}>",
    "usergroup": lambda e: f"<!subteam^{e.get('usergroup_id', '')}>",
    "broadcast": lambda e: f"<!{e.get('range', '')}>",
    "emoji": lambda e: f":{e.get('name', '')}:",
}


def _rich_text(element: Any) -> str:
    """One ``rich_text`` element as mrkdwn. Its text arrives unescaped, unlike a message's
    ``text``, so it is escaped here: the result reads like the message's own text."""
    if not isinstance(element, Mapping):
        return ""
    kind = element.get("type")
    if kind == "text":
        return escape_mrkdwn(str(element.get("text", "")))
    if kind == "link":
        url, label = str(element.get("url", "")), str(element.get("text") or "")
        return f"<{url}|{escape_mrkdwn(label)}>" if label else f"<{url}>"
    if kind in _RICH_TEXT_ENTITIES:
        return _RICH_TEXT_ENTITIES[kind](element)
    inner = [_rich_text(e) for e in element.get("elements") or []]
    if kind == "rich_text_list":
        return "\n".join(f"• {line}" for line in inner)
    return "".join(inner)


def message_text(message: Mapping[str, Any]) -> str:
    """What a Slack message says, as people see it: its ``text``, or when that is empty the
    text of its blocks; then its attachments (where alerting integrations and incoming webhooks
    put their content; a link preview is left out) and the names of its files."""
    parts = [str(message.get("text") or "").strip()]
    if not parts[0]:
        blocks = [b for b in message.get("blocks") or [] if isinstance(b, Mapping)]
        parts = [t.strip() for t in iter_texts(blocks)]
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, Mapping) and not (
            attachment.get("from_url") or attachment.get("original_url")
        ):
            parts.extend(_attachment_texts(attachment))
    for file in message.get("files") or []:
        if isinstance(file, Mapping):
            parts.append(f"[file: {file.get('name') or file.get('title') or 'attachment'}]")
    return "\n".join(dict.fromkeys(p for p in parts if p))


def _attachment_texts(attachment: Mapping[str, Any]) -> list[str]:
    """An attachment's pretext, title, text, fields and blocks; its ``fallback`` (the plain
    summary Slack shows where attachments cannot be) only when it has none of them."""
    texts = [str(attachment.get(k) or "").strip() for k in ("pretext", "title", "text")]
    for field in attachment.get("fields") or []:
        if isinstance(field, Mapping):
            title = str(field.get("title") or "").strip()
            value = str(field.get("value") or "").strip()
            texts.append(f"{title}: {value}" if title and value else title or value)
    blocks = [b for b in attachment.get("blocks") or [] if isinstance(b, Mapping)]
    texts.extend(t.strip() for t in iter_texts(blocks))
    texts = [t for t in texts if t]
    return texts or [str(attachment.get("fallback") or "").strip()]


ACTOR_MAX = 64
"""``TimelineEvent.actor_id``'s column size."""


def same_emoji(name: object, wanted: str) -> bool:
    """Whether a reaction ``name`` is the emoji ``wanted``, whatever its skin tone: Slack
    names a toned reaction ``raised_hand::skin-tone-3``, and lists each tone apart."""
    return isinstance(name, str) and name.split("::", 1)[0] == wanted.split("::", 1)[0]


def message_author(message: Mapping[str, object]) -> str | None:
    """Who wrote a captured message: the person (or app's bot user), else the name an
    integration posts under (an incoming webhook's ``username``, the app's ``bot_profile``),
    else the bot's id."""
    profile = message.get("bot_profile")
    for found in (
        message.get("user"),
        message.get("username"),
        profile.get("name") if isinstance(profile, Mapping) else None,
        message.get("bot_id"),
    ):
        if isinstance(found, str) and found.strip():
            return truncate(" ".join(found.split()), ACTOR_MAX, plain=True)
    return None
