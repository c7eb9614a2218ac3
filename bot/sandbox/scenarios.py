"""What tests and ``firebreak demo`` do with the workspace: seed it, add people, channels and
user groups, look things up by name, read what the bot did (messages, threads, pins, ephemeral
messages, views, files, response_url posts), and act as people and admins do (say something,
react, join, archive, remove the bot, click: triggers and response URLs)."""

from __future__ import annotations

import string
import uuid
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.sandbox.args import (
    deep_copy,
    epoch,
)
from bot.sandbox.blocks import rich_text_block
from bot.sandbox.records import (
    JSON,
    VIEW_STACK_LIMIT,
    ApiCall,
    Channel,
    Ephemeral,
    FakeSlackError,
    Message,
    ResponsePost,
    ResponseUrl,
    Trigger,
    UploadedFile,
    User,
    Usergroup,
    View,
)
from bot.sandbox.typed import escape_typed
from bot.sandbox.workspace import Workspace
from bot.slack.limits import view_errors


class Scenarios(Workspace):
    def _seed(self) -> None:
        # name, real name, display name, timezone, role ("admin", "owner", "deleted" or "")
        people = [
            ("ana.garcia", "Ana García", "Ana", "Europe/Madrid", "admin"),
            ("ben.okafor", "Ben Okafor", "Ben", "Europe/London", "owner"),
            ("chloe.martin", "Chloé Martin", "Chloé", "Europe/Paris", ""),
            ("dev.patel", "Dev Patel", "dev", "Asia/Kolkata", ""),
            ("erin.walsh", "Erin Walsh", "Erin", "America/New_York", ""),
            ("farid.haddad", "Farid Haddad", "Farid", "America/Los_Angeles", ""),
            ("grace.lee", "Grace Lee", "", "Asia/Seoul", "deleted"),
        ]
        ids = {}
        for name, real_name, display, tz, role in people:
            ids[name] = self.add_user(
                name,
                real_name=real_name,
                display_name=display,
                tz=tz,
                is_admin=role == "admin",
                is_owner=role == "owner",
                deleted=role == "deleted",
            )
        self.add_user("uptime-monitor", real_name="Uptime Monitor", is_bot=True)
        active = [ids[name] for name, *_ in people if name != "grace.lee"]
        general = self.add_channel("general", members=active, purpose="Company-wide news")
        self._channels[general].is_general = True
        self.add_channel(
            "incidents",
            members=active,
            bot_member=True,
            topic="Open incidents are announced here",
        )
        self.add_usergroup(
            self._new_id("S", 10),
            "oncall",
            [ids["ana.garcia"], ids["dev.patel"], ids["erin.walsh"]],
            name="On-call engineers",
        )
        self.add_usergroup(
            self._new_id("S", 10),
            "incident-commanders",
            [ids["ben.okafor"], ids["chloe.martin"]],
            name="Incident commanders",
        )

    def add_user(
        self,
        name: str,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        email: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        deleted: bool = False,
        is_bot: bool = False,
        tz: str = "UTC",
    ) -> str:
        """Add a person (or another app's bot user) and return the user id."""
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise FakeSlackError(f"unknown timezone {tz!r}") from None
        with self._lock:
            if any(u.name == name for u in self._users.values()):
                raise FakeSlackError(f"a user named {name!r} already exists")
            user = User(
                id=self._new_id("U", 10),
                team_id=self.team_id,
                name=name,
                real_name=real_name if real_name is not None else name,
                display_name=display_name if display_name is not None else "",
                email=email if email is not None else ("" if is_bot else f"{name}@example.com"),
                is_admin=is_admin or is_owner,
                is_owner=is_owner,
                is_primary_owner=is_owner
                and not any(u.is_primary_owner for u in self._users.values()),
                deleted=deleted,
                is_bot=is_bot,
                bot_id=self._new_id("B", 10) if is_bot else None,
                tz=tz,
                updated=epoch(self.now()),
            )
            self._users[user.id] = user
            return user.id

    def add_channel(
        self,
        name: str,
        *,
        private: bool = False,
        members: Iterable[str] = (),
        bot_member: bool = False,
        topic: str = "",
        purpose: str = "",
        archived: bool = False,
    ) -> str:
        """Add a channel people created (not the bot) and return its id."""
        with self._lock:
            if any(c.name == name for c in self._channels.values() if not c.is_im):
                raise FakeSlackError(f"a channel named #{name} already exists")
            member_ids = [self._user(m).id for m in members]
            creator = member_ids[0] if member_ids else next(iter(self._human_ids()), "")
            channel = Channel(
                id=self._new_id("C", 10),
                name=name,
                created=epoch(self.now()),
                creator=creator,
                is_private=private,
                members=list(dict.fromkeys(member_ids)),
                is_archived=archived,
            )
            if bot_member:
                channel.members.append(self.bot_user_id)
            stamp = epoch(self.now())
            channel.topic = {"value": topic, "creator": creator if topic else "", "last_set": stamp}
            channel.purpose = {
                "value": purpose,
                "creator": creator if purpose else "",
                "last_set": stamp,
            }
            self._channels[channel.id] = channel
            return channel.id

    def add_usergroup(
        self,
        id: str,
        handle: str,
        users: Iterable[str],
        *,
        name: str | None = None,
        description: str = "",
        disabled: bool = False,
    ) -> str:
        """Add a user group (``@handle``) with the given members and return its id."""
        with self._lock:
            if not id.startswith("S"):
                raise FakeSlackError(f"user group ids start with S (got {id!r})")
            member_ids = [self._user(u).id for u in users]
            self._usergroups[id] = Usergroup(
                id=id,
                handle=handle.lstrip("@"),
                name=name or handle.lstrip("@"),
                users=member_ids,
                description=description,
                disabled=disabled,
                created=epoch(self.now()),
                created_by=next(iter(self._human_ids()), ""),
            )
            return id

    def _human_ids(self) -> list[str]:
        return [u.id for u in self._users.values() if not u.is_bot and not u.deleted]

    # ----------------------------------------------------------------------------------------
    # Lookups for tests (by id or by name)

    def _user(self, ref: str) -> User:
        user = self._users.get(ref)
        if user is None:
            user = next((u for u in self._users.values() if u.name == ref.lstrip("@")), None)
        if user is None:
            raise FakeSlackError(f"no user {ref!r} in the fake workspace")
        return user

    def _channel(self, ref: str) -> Channel:
        channel = self._channels.get(ref)
        if channel is None:
            name = ref.lstrip("#")
            channel = next(
                (c for c in self._channels.values() if c.name == name and not c.is_im), None
            )
        if channel is None:
            raise FakeSlackError(f"no channel {ref!r} in the fake workspace")
        return channel

    def user_id(self, name: str) -> str:
        """The id of the user with this name (``ana.garcia`` or ``@ana.garcia``)."""
        with self._lock:
            return self._user(name).id

    def channel_id(self, name: str) -> str:
        """The id of the channel with this name (``incidents`` or ``#incidents``)."""
        with self._lock:
            return self._channel(name).id

    def usergroup_id(self, handle: str) -> str:
        with self._lock:
            for group in self._usergroups.values():
                if group.handle == handle.lstrip("@"):
                    return group.id
        raise FakeSlackError(f"no user group @{handle.lstrip('@')}")

    def user(self, ref: str) -> User:
        with self._lock:
            return deep_copy(self._user(ref))

    def channel(self, ref: str) -> Channel:
        with self._lock:
            return deep_copy(self._channel(ref))

    def users(self) -> list[User]:
        with self._lock:
            return deep_copy(list(self._users.values()))

    def channels(self) -> list[Channel]:
        with self._lock:
            return deep_copy([c for c in self._channels.values() if not c.is_im])

    def members(self, channel: str) -> list[str]:
        with self._lock:
            return list(self._channel(channel).members)

    def user_json(self, ref: str) -> JSON:
        """The user as ``users.info`` returns it."""
        with self._lock:
            return self._user_json(self._user(ref))

    def channel_json(self, ref: str) -> JSON:
        """The channel as ``conversations.info`` returns it."""
        with self._lock:
            return self._channel_json(self._channel(ref))

    def im_channel(self, user: str) -> str:
        """The id of the bot's direct-message channel with ``user`` (opened on first use)."""
        with self._lock:
            return self._im_for(self._user(user).id).id

    # ----------------------------------------------------------------------------------------
    # Inspecting what the bot did

    @property
    def calls(self) -> list[ApiCall]:
        """Every Web API call, in order: method, args, response, HTTP status, time."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, *, applied: bool | None = None) -> list[ApiCall]:
        """Calls to ``method``; ``applied=True``: only those whose side effects happened (the
        work was done, whether or not the client saw the answer), ``False``: the others."""
        with self._lock:
            return [
                c
                for c in self._calls
                if c.method == method and (applied is None or c.applied == applied)
            ]

    def messages(self, channel: str, *, include_system: bool = False) -> list[Message]:
        """The channel's top-level messages, oldest first (thread replies: ``replies``).
        System messages (``channel_join``, ``channel_topic``...) only when asked for."""
        with self._lock:
            found = self._channel(channel)
            return deep_copy(
                [
                    m
                    for m in found.messages.values()
                    if (not m.is_reply or m.reply_broadcast)
                    and (include_system or m.subtype is None)
                ]
            )

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            found = self._channel(channel).messages.get(ts)
            if found is None:
                raise FakeSlackError(f"no message {ts} in {channel}")
            return deep_copy(found)

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """Replies in the thread under ``thread_ts``, oldest first (without the parent)."""
        with self._lock:
            found = self._channel(channel)
            return deep_copy(
                [m for m in found.messages.values() if m.is_reply and m.thread_ts == thread_ts]
            )

    def message_json(self, channel: str, ts: str) -> JSON:
        """The message as ``conversations.history`` returns it (what a person sees)."""
        with self._lock:
            found = self._channel(channel)
            message = found.messages.get(ts)
            if message is None:
                raise FakeSlackError(f"no message {ts} in {channel}")
            return self._message_json(found, message)

    def pins(self, channel: str) -> list[str]:
        """Timestamps of the pinned messages, in the order they were pinned."""
        with self._lock:
            return list(self._channel(channel).pins)

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        with self._lock:
            channel_id = self._channel(channel).id if channel is not None else None
            user_id = self._user(user).id if user is not None else None
            return deep_copy(
                [
                    e
                    for e in self._ephemerals
                    if not e.deleted
                    and (channel_id is None or e.channel == channel_id)
                    and (user_id is None or e.user == user_id)
                ]
            )

    def ephemeral(self, ts: str) -> Ephemeral:
        with self._lock:
            for item in self._ephemerals:
                if item.ts == ts and not item.deleted:
                    return deep_copy(item)
        raise FakeSlackError(f"no ephemeral message {ts}")

    def view(self, view_id: str) -> View:
        with self._lock:
            found = self._views.get(view_id)
            if found is None:
                raise FakeSlackError(f"no view {view_id}")
            return deep_copy(found)

    def view_json(self, view_id: str) -> JSON:
        """The view as Slack sends it in payloads (with ``state``, ``hash``, ids)."""
        with self._lock:
            found = self._views.get(view_id)
            if found is None:
                raise FakeSlackError(f"no view {view_id}")
            return self._view_json(found)

    def open_views(self, user: str) -> list[View]:
        """The user's modal stack, bottom first."""
        with self._lock:
            stack = self._modal_stacks.get(self._user(user).id, [])
            return deep_copy([self._views[v] for v in stack])

    def home_view(self, user: str) -> View | None:
        with self._lock:
            view_id = self._home_views.get(self._user(user).id)
            return deep_copy(self._views[view_id]) if view_id else None

    def files(self) -> list[UploadedFile]:
        with self._lock:
            return deep_copy(list(self._files.values()))

    def response_posts(self, url: str | None = None) -> list[ResponsePost]:
        with self._lock:
            return [p for p in self._response_posts if url is None or p.url == url]

    # ----------------------------------------------------------------------------------------
    # Scenarios: what people and admins do

    def remove_bot_from_channel(self, channel: str) -> None:
        """Someone removed the bot from the channel (``/remove @firebreak``)."""
        with self._lock:
            found = self._channel(channel)
            if self.bot_user_id in found.members:
                found.members.remove(self.bot_user_id)

    def delete_message(self, channel: str, ts: str) -> None:
        """Someone (an admin, or the bot's message deleted by hand) deletes a message: later
        edits of it answer ``message_not_found``."""
        with self._lock:
            found = self._channel(channel)
            if found.messages.pop(ts, None) is None:
                raise FakeSlackError(f"no message {ts} in #{found.name}")
            found.pins.pop(ts, None)

    def invite_bot_back(self, channel: str) -> None:
        """Someone invited the bot back into the channel (``/invite @firebreak``)."""
        with self._lock:
            found = self._channel(channel)
            if self.bot_user_id not in found.members:
                found.members.append(self.bot_user_id)

    def delete_channel(self, channel: str) -> None:
        """A workspace admin deleted the channel: every later call on it answers
        ``channel_not_found``."""
        with self._lock:
            self._channel(channel)
            del self._channels[channel]

    def archive(self, channel: str) -> None:
        """Someone archived the channel."""
        with self._lock:
            self._channel(channel).is_archived = True

    def unarchive(self, channel: str) -> None:
        """Someone unarchived the channel."""
        with self._lock:
            self._channel(channel).is_archived = False

    def rename(self, channel: str, name: str) -> None:
        """Someone renamed the channel."""
        with self._lock:
            self._channel(channel).name = name

    def share_externally(self, channel: str) -> str:
        """Someone shared the private channel with another organisation (Slack Connect): as
        Slack does, it keeps its name, members and history under a new id, and the old id
        answers ``channel_not_found``. Returns the new id (for ``channel_id_changed``)."""
        with self._lock:
            found = self._channel(channel)
            new_id = self._new_id("C", 10)
            del self._channels[found.id]
            found.id = new_id
            for message in found.messages.values():
                message.channel = new_id
            self._channels[new_id] = found
            return new_id

    def join(self, channel: str, user: str) -> str:
        """A person joins the channel; returns the ts of the ``channel_join`` message."""
        with self._lock:
            found, person = self._channel(channel), self._user(user)
            if found.is_archived:
                raise FakeSlackError(f"#{found.name} is archived")
            if person.id in found.members:
                raise FakeSlackError(f"{person.name} is already in #{found.name}")
            found.members.append(person.id)
            return self._system_message(found, person.id, "channel_join", "has joined the channel")

    def leave(self, channel: str, user: str) -> None:
        """A person leaves the channel, or is removed from it."""
        with self._lock:
            found, person = self._channel(channel), self._user(user)
            if person.id not in found.members:
                raise FakeSlackError(f"{person.name} is not in #{found.name}")
            found.members.remove(person.id)

    def user_says(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> str:
        """Store a message as a person posted it and return its ts. The simulator builds the
        matching ``message`` event from the stored message (``message_event(channel, ts)``).
        ``text`` is what the person typed (mentions and links written as the client's tokens);
        it is stored escaped, as Slack stores it (:func:`escape_typed`)."""
        with self._lock:
            found, person = self._channel(channel), self._user(user)
            if person.deleted:
                raise FakeSlackError(f"{person.name} is deactivated and cannot post")
            if found.is_archived:
                raise FakeSlackError(f"#{found.name} is archived: nobody can post in it")
            if person.id not in found.members:
                raise FakeSlackError(
                    f"{person.name} is not in #{found.name}: call join() first, as a person "
                    "would have to"
                )
            if thread_ts is not None:
                parent = found.messages.get(thread_ts)
                if parent is None:
                    raise FakeSlackError(f"no message {thread_ts} in #{found.name} to reply to")
                thread_ts = parent.thread_ts or parent.ts
            escaped = escape_typed(text)
            message = Message(
                channel=found.id,
                ts=self._next_ts(),
                user=person.id,
                text=escaped,
                blocks=[rich_text_block(escaped, self._random)],
                thread_ts=thread_ts,
                client_msg_id=str(uuid.UUID(int=self._random.getrandbits(128), version=4)),
            )
            found.messages[message.ts] = message
            return message.ts

    def user_reacts(self, channel: str, ts: str, user: str, reaction: str) -> None:
        """A person adds an emoji reaction to a message."""
        with self._lock:
            found, person = self._channel(channel), self._user(user)
            message = found.messages.get(ts)
            if message is None:
                raise FakeSlackError(f"no message {ts} in #{found.name}")
            name = reaction.strip(":")
            users = message.reactions.setdefault(name, [])
            if person.id in users:
                raise FakeSlackError(f"{person.name} already reacted with :{name}:")
            users.append(person.id)

    def user_unreacts(self, channel: str, ts: str, user: str, reaction: str) -> None:
        """A person removes their emoji reaction from a message."""
        with self._lock:
            found, person = self._channel(channel), self._user(user)
            message = found.messages.get(ts)
            name = reaction.strip(":")
            if message is None or person.id not in message.reactions.get(name, []):
                raise FakeSlackError(f"{person.name} has no :{name}: on {ts}")
            message.reactions[name].remove(person.id)
            if not message.reactions[name]:
                del message.reactions[name]

    def issue_trigger(self, user: str) -> str:
        """A ``trigger_id`` as Slack sends with an interaction; valid for three seconds."""
        with self._lock:
            person = self._user(user)
            now = self.now()
            token = "".join(self._random.choices("0123456789abcdef", k=32))
            trigger_id = f"{epoch(now)}.{self._random.randrange(10**11, 10**12)}.{token}"
            self._triggers[trigger_id] = Trigger(trigger_id, person.id, now)
            return trigger_id

    def issue_response_url(
        self,
        channel: str,
        user: str,
        *,
        message_ts: str | None = None,
        ephemeral_ts: str | None = None,
    ) -> str:
        """A ``response_url`` for an interaction in ``channel`` by ``user``; ``message_ts`` or
        ``ephemeral_ts`` name the message the interaction came from (for replace/delete)."""
        with self._lock:
            found, person = self._channel(channel), self._user(user)
            url_id = "".join(self._random.choices(string.ascii_letters + string.digits, k=24))
            url = f"{self.base_url}/response/{self.team_id}/{url_id}"
            original: tuple[str, str] | None = None
            if message_ts is not None:
                original = ("message", message_ts)
            elif ephemeral_ts is not None:
                original = ("ephemeral", ephemeral_ts)
            self._response_urls[url_id] = ResponseUrl(
                url_id, url, found.id, person.id, self.now(), original
            )
            return url

    # ----------------------------------------------------------------------------------------
    # What Slack does with the bot's HTTP responses (used by the simulator)

    def deliver_response(
        self,
        payload: JSON,
        *,
        channel: str,
        user: str,
        original: tuple[str, str] | None = None,
        source: str = "ack",
    ) -> str | None:
        """Show a message the bot returned to an interaction (a command's acknowledgement or a
        response_url post): ephemeral by default, ``in_channel`` as a channel message, or
        replacing / deleting the original. Returns Slack's error code, or None."""
        with self._lock:
            return self._deliver(payload, self._channel(channel).id, user, original, source)

    def close_view(self, view_id: str) -> None:
        """The person closed the modal (or the bot acknowledged its submission)."""
        with self._lock:
            self._close_view(view_id)

    def clear_views(self, user: str) -> None:
        with self._lock:
            for view_id in self._modal_stacks.pop(self._user(user).id, []):
                self._views[view_id].is_open = False

    def replace_view(self, view_id: str, view: JSON) -> list[str]:
        """``response_action: update``: replace the open view; returns Slack's complaints."""
        with self._lock:
            found = self._views.get(view_id)
            if found is None or not found.is_open:
                return [f"view {view_id} is not open"]
            problems = view_errors(view)
            if not problems and view.get("type") != found.type:
                problems = [f"view.type: cannot change a {found.type} into {view.get('type')}"]
            if problems:
                return problems
            found.payload = deep_copy(view)
            found.hash = self._new_hash()
            found.state_values = {}
            return []

    def push_view(self, view_id: str, view: JSON) -> tuple[str | None, list[str]]:
        """``response_action: push``: stack a new modal on top; returns (id, complaints)."""
        with self._lock:
            found = self._views.get(view_id)
            if found is None or not found.is_open:
                return None, [f"view {view_id} is not open"]
            stack = self._modal_stacks.get(found.user, [])
            if len(stack) >= VIEW_STACK_LIMIT:
                return None, ["push_limit_reached"]
            problems = view_errors(view)
            if problems:
                return None, problems
            new = self._create_view(found.user, view, root=stack[0] if stack else None)
            new.previous_view_id = stack[-1] if stack else None
            stack.append(new.id)
            self._modal_stacks[found.user] = stack
            return new.id, []

    def set_view_state(self, view_id: str, block_id: str, action_id: str, state: JSON) -> None:
        """Remember what a person chose in a view's element (Slack keeps it in view.state)."""
        with self._lock:
            found = self._views.get(view_id)
            if found is None:
                raise FakeSlackError(f"no view {view_id}")
            found.state_values.setdefault(block_id, {})[action_id] = deep_copy(state)
