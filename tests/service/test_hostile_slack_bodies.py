"""Validly signed bodies Slack never sends that used to reach a 500: JSON nested far deeper than
the interpreter's stack (as an event body and inside ``payload=``), a number longer than Python
converts (refused with the same words as an alert webhook's), and a view submission whose
view has no ``type`` (which Bolt reads). Each is refused with 400 naming the problem, nothing is
stored or sent to Slack, and no traceback is logged."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from bot.db import Database
from bot.sandbox import FakeSlack
from bot.sandbox.signing import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, signed_headers
from bot.testing.harness import LocalBot
from tests.service.test_malformed_requests import (  # noqa: F401 (fixtures)
    SECRET,
    USER,
    assert_nothing_happened,
    bot,
    fake,
    form,
    post,
)

DEPTH = 100_000


def deep(prefix: str) -> str:
    """``prefix`` followed by a list nested ``DEPTH`` deep, closing the object."""
    return prefix + "[" * DEPTH + "]" * DEPTH + "}"


HOSTILE = {
    "an event body nested 100,000 deep": (
        deep('{"type": "event_callback", "event": {"type": "message", "x": ') + "}",
        JSON_CONTENT_TYPE,
        "the body is nested too deeply",
    ),
    "a payload nested 100,000 deep": (
        "payload=" + quote(deep('{"type": "block_actions", "x": ')),
        FORM_CONTENT_TYPE,
        "payload is nested too deeply",
    ),
    "an event body with a number of 5,000 digits": (
        '{"type": "event_callback", "event": {"type": "message", "ts": ' + "1" * 5000 + "}}",
        JSON_CONTENT_TYPE,
        "the body holds a number of more than 4,300 digits, which no field is",
    ),
    "a payload with a number of 5,000 digits": (
        "payload=" + quote('{"type": "block_actions", "x": ' + "1" * 5000 + "}"),
        FORM_CONTENT_TYPE,
        "payload holds a number of more than 4,300 digits, which no field is",
    ),
    "a view submission whose view has no type": (
        form(
            {
                "type": "view_submission",
                "user": USER,
                "team": {"id": "T1"},
                "view": {"id": "V1", "callback_id": "declare", "state": {"values": {}}},
            }
        ),
        FORM_CONTENT_TYPE,
        "payload.view.type is missing or not a string",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_signed_hostile_body_is_a_clear_400(
    bot: LocalBot,  # noqa: F811 (the imported fixture)
    fake: FakeSlack,  # noqa: F811
    db: Database,
    case: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body, content_type, problem = HOSTILE[case]
    headers = signed_headers(SECRET, body, content_type=content_type)
    assert post(bot, body, headers) == (400, f"malformed request: {problem}")
    assert_nothing_happened(bot, fake, db)
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]
