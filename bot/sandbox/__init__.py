"""A local stand-in for Slack, as the bot meets it: it backs ``firebreak demo`` and every
end-to-end test.

* ``FakeSlack``: the Web API (and upload and response URLs) over real HTTP, with Slack's
  argument checks, error codes, rate limits and expiring triggers.
* ``SlackSimulator``: the requests Slack sends to the bot (commands, clicks, modal
  submissions, shortcuts, events), signed and shaped as Slack sends them; what a person types in
  a command or a message is escaped as Slack escapes it (``typed.escape_typed``).
* ``SocketModeServer`` (``fake.socket_mode``): Slack's side of Socket Mode, on a local
  websocket server.
* ``sign`` / ``signed_headers``: Slack's ``v0`` request signature.

Ships inside the product because ``firebreak demo`` runs on it; it never imports pytest.
"""

from bot.sandbox.fake import FakeSlack
from bot.sandbox.people import SimulatorError
from bot.sandbox.records import (
    ApiCall,
    Ephemeral,
    FakeSlackError,
    Message,
    ResponsePost,
    UploadedFile,
    View,
)
from bot.sandbox.signing import sign, signed_headers
from bot.sandbox.simulator import BotReply, SentRequest, SlackSimulator
from bot.sandbox.socket_mode import Envelope, SocketModeServer

__all__ = [
    "ApiCall",
    "BotReply",
    "Envelope",
    "Ephemeral",
    "FakeSlack",
    "FakeSlackError",
    "Message",
    "ResponsePost",
    "SentRequest",
    "SimulatorError",
    "SlackSimulator",
    "SocketModeServer",
    "UploadedFile",
    "View",
    "sign",
    "signed_headers",
]
