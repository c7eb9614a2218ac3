"""Slack as the bot meets it, for end-to-end tests and ``firebreak demo``.

* ``FakeSlack``: the Web API (and upload and response URLs) over real HTTP, with Slack's
  argument checks, error codes, rate limits and expiring triggers.
* ``SlackSimulator``: the requests Slack sends to the bot (commands, clicks, modal
  submissions, shortcuts, events), signed and shaped as Slack sends them.
* ``sign`` / ``signed_headers``: Slack's ``v0`` request signature.

Ships inside the product because ``firebreak demo`` runs on it; it never imports pytest.
"""

from bot.testing.fake_slack import (
    ApiCall,
    Ephemeral,
    FakeSlack,
    FakeSlackError,
    Message,
    ResponsePost,
    UploadedFile,
    View,
)
from bot.testing.signing import sign, signed_headers
from bot.testing.simulator import BotReply, SentRequest, SimulatorError, SlackSimulator

__all__ = [
    "ApiCall",
    "BotReply",
    "Ephemeral",
    "FakeSlack",
    "FakeSlackError",
    "Message",
    "ResponsePost",
    "SentRequest",
    "SimulatorError",
    "SlackSimulator",
    "UploadedFile",
    "View",
    "sign",
    "signed_headers",
]
