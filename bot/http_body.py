"""Reading a request body with a size limit and a time limit, before anything parses it, and
the JSON in it (Slack requests and alert webhooks alike)."""

from __future__ import annotations

import json
import sys

import anyio
from starlette.requests import Request

BODY_SECONDS = 10.0
"""How long a body may take to arrive. Slack's and alerting tools' bodies are small and sent at
once (Slack gives up on an answer after 3 s); a body trickling in for longer is refused."""


class BodyTooLarge(Exception):
    """The body is over the limit (answered 413; nothing is read further)."""


class BodyTooSlow(Exception):
    """The body did not arrive within ``BODY_SECONDS`` (answered 408; nothing is kept)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as it (or its declared length) is over ``limit``, or
    when it has not all arrived within ``BODY_SECONDS``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    try:
        with anyio.fail_after(BODY_SECONDS):
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > limit:
                    raise BodyTooLarge
    except TimeoutError:
        raise BodyTooSlow from None
    return bytes(body)


class NotJSON(ValueError):
    """Why a text is not JSON the bot can read: the message follows what was read ("the body",
    "payload"): "is not JSON (Expecting value at line 1 column 1)"."""


def load_json(text: str) -> object:
    """The JSON value in ``text``, or :class:`NotJSON` saying why there is none. Every way
    ``json.loads`` refuses a text is one: broken JSON, nesting deeper than the interpreter's
    stack, and an integer longer than Python converts (4,300 digits: no field of any sender is
    that long, and the ``ValueError`` it raises is no ``JSONDecodeError``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotJSON(f"is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError:
        limit = sys.get_int_max_str_digits()
        raise NotJSON(f"holds a number of more than {limit:,} digits, which no field is") from None
    except RecursionError:
        raise NotJSON("is nested too deeply") from None
