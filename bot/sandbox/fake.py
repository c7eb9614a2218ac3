"""``FakeSlack``: a local Slack workspace and Web API over real HTTP, for end-to-end tests and
``firebreak demo``.

The bot talks to it exactly as it talks to Slack: ``WebClient(base_url=fake.api_url)`` sends the
same form, JSON and multipart bodies, the same ``Authorization: Bearer`` header, and reads the
same response shapes, error codes, HTTP 429s with ``Retry-After`` and HTTP 500s. The fake follows
Slack's documented behaviour rather than what the bot happens to need: channel-name rules,
``already_in_channel``, ``not_in_channel`` when the bot was removed, ``invalid_blocks`` for a
payload over Block Kit's limits, ``expired_trigger_id`` when a modal opens more than three
seconds after the click, ``hash_conflict`` on a stale view update. A bot that passes against the
fake therefore meets the failures it will meet in production.

State lives in memory behind one lock: every request is handled atomically, so two replicas or
a burst of threads see a consistent workspace. Time comes from a controllable clock
(``advance()``), so expiry rules are tested without sleeping.

Typical use::

    with FakeSlack() as fake:
        client = WebClient(token=fake.token, base_url=fake.api_url)
        ...
        assert fake.messages(channel)[-1].text == "..."
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from bot.clock import utcnow
from bot.sandbox.args import Args
from bot.sandbox.methods.chat import ChatMethods
from bot.sandbox.methods.conversations import ConversationsMethods
from bot.sandbox.methods.files import FilesMethods
from bot.sandbox.methods.users import UsersMethods
from bot.sandbox.methods.views import ViewsMethods
from bot.sandbox.records import JSON
from bot.sandbox.scenarios import Scenarios
from bot.sandbox.server import HttpServer
from bot.sandbox.socket_mode import SocketModeServer
from bot.sandbox.tls import Certificate


class FakeSlack(
    HttpServer,
    Scenarios,
    ConversationsMethods,
    ChatMethods,
    ViewsMethods,
    UsersMethods,
    FilesMethods,
):
    """An in-memory Slack workspace served over HTTP on 127.0.0.1 (a free port).

    Seeded with a realistic team (``seed_workspace=True``): a handful of people in different
    timezones (an admin, an owner, a deactivated account, another app's bot), an ``@oncall``
    user group, ``#general`` (without the bot) and ``#incidents`` (with the bot)."""

    def __init__(
        self,
        *,
        team_name: str = "Acme Corp",
        team_domain: str = "acme",
        bot_name: str = "firebreak",
        seed: int | None = None,
        clock: Callable[[], datetime] = utcnow,
        seed_workspace: bool = True,
        tls: Certificate | None = None,
    ) -> None:
        self.tls = tls
        super().__init__(
            team_name=team_name, team_domain=team_domain, bot_name=bot_name, seed=seed, clock=clock
        )
        # Derived, not drawn: the seeded ids of everything else stay as they were.
        digest = hashlib.sha256(self.token.encode()).hexdigest()
        self.app_token = f"xapp-1-{self.app_id}-{int(digest[:12], 16)}-{digest}"
        self.socket_mode = SocketModeServer(self)
        """Slack's side of Socket Mode (started by the first ``apps.connections.open``)."""
        self._methods = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "team.info": self._team_info,
            "bots.info": self._bots_info,
            "conversations.create": self._conversations_create,
            "conversations.invite": self._conversations_invite,
            "conversations.setTopic": self._conversations_set_topic,
            "conversations.setPurpose": self._conversations_set_purpose,
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "conversations.join": self._conversations_join,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.archive": self._conversations_archive,
            "conversations.list": self._conversations_list,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.delete": self._chat_delete,
            "pins.add": self._pins_add,
            "pins.remove": self._pins_remove,
            "pins.list": self._pins_list,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "files.info": self._files_info,
            "apps.connections.open": self._apps_connections_open,
        }
        if seed_workspace:
            self._seed()

    def stop(self) -> None:
        self.socket_mode.stop()
        super().stop()

    def _apps_connections_open(self, args: Args) -> JSON:
        return {"url": self.socket_mode.open_url()}
