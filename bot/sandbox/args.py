"""Arguments as Slack reads them (form fields, JSON bodies and multipart alike), cursor paging,
message timestamps, and the arguments of a call as a test reads them back."""

from __future__ import annotations

import base64
import contextlib
import copy
import email.parser
import email.policy
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from bot.sandbox.records import EPOCH, JSON, PAGE_LIMIT_MAX, ApiError, truthy

_T = TypeVar("_T")


class Args:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return value
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        return json.dumps(value)

    def required(self, name: str, error: str) -> str:
        value = self.text(name)
        if not value:
            raise ApiError(error)
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        return default if value is None or value == "" else truthy(value)

    def number(self, name: str, default: int) -> int:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        try:
            return int(str(value))
        except ValueError:
            raise ApiError("invalid_arguments", response_metadata=error_lines(f"{name}")) from None

    def decoded(self, name: str, error: str) -> Any:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(error) from None
        return value


def error_lines(*lines: str) -> JSON:
    return {"messages": [f"[ERROR] {line}" for line in lines]}


def ts_key(ts: str) -> int:
    """A message ts as integer microseconds, for ordering and range filters."""
    seconds, _, fraction = ts.partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(ts)
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def epoch(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode("ascii")


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode("ascii")).decode().partition(":")
        if kind != "offset" or not value.isdigit():
            raise ValueError(cursor)
        return int(value)
    except ValueError:
        raise ApiError("invalid_cursor") from None


def paginate(items: list[Any], args: Args, default_limit: int = 100) -> tuple[list[Any], str]:
    limit = args.number("limit", default_limit)
    if limit <= 0:
        limit = default_limit
    limit = min(limit, PAGE_LIMIT_MAX)
    start = _offset(args.text("cursor"))
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, _cursor(start + limit) if more else ""


def parse_multipart(content_type: str, body: bytes) -> JSON:
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = parser.parsebytes(head + body)
    fields: JSON = {}
    if not message.is_multipart():
        raise ApiError("invalid_form_data")
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        if part.get_filename():
            fields[str(name)] = payload
        else:
            fields[str(name)] = payload.decode("utf-8", errors="replace")
    return fields


def deep_copy(value: _T) -> _T:
    return copy.deepcopy(value)


JSON_ARGS = ("blocks", "attachments", "view", "files", "metadata")


def recorded_args(args: Mapping[str, Any]) -> JSON:
    """The call's arguments as the test wants to read them: JSON strings decoded."""
    recorded: JSON = {}
    for key, value in args.items():
        if key == "token":
            continue
        if key in JSON_ARGS and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        elif isinstance(value, bytes):
            value = f"<{len(value)} bytes>"
        recorded[key] = deep_copy(value)
    return recorded
