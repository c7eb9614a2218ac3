"""Slack's v0 request signature."""

from __future__ import annotations

import string

from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from bot.sandbox.signing import sign, signed_headers


def test_matches_the_example_in_slacks_documentation() -> None:
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        "command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        "commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body) == expected


@given(
    secret=st.text(string.ascii_letters + string.digits, min_size=1),
    timestamp=st.integers(0, 2**34),
    body=st.text(),
)
def test_agrees_with_slack_sdk(secret: str, timestamp: int, body: str) -> None:
    verifier = SignatureVerifier(secret)
    assert sign(secret, timestamp, body) == verifier.generate_signature(
        timestamp=str(timestamp), body=body
    )
    assert sign(secret, str(timestamp), body.encode()) == sign(secret, timestamp, body)


def test_headers_use_the_current_time_and_verify() -> None:
    body = b'{"type":"event_callback"}'
    with freeze_time("2024-05-01 12:00:00"):
        headers = signed_headers("s3cret", body, content_type="application/json")
        assert headers["X-Slack-Request-Timestamp"] == "1714564800"
        assert headers["Content-Type"] == "application/json"
        assert SignatureVerifier("s3cret").is_valid_request(body, headers)
        assert not SignatureVerifier("other").is_valid_request(body, headers)
