"""The console in demo mode: a local sign-in as one of a few demo people, over any database.

``firebreak demo --serve`` calls ``serve_console_demo`` with the demo's database, its policy and
a Directory and names backed by the demo's fake Slack. The demo sign-in exists only here:
``bot.server`` never passes demo users, and a demo session cookie is refused by a console that
has none.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from bot import migrations
from bot.access import Directory
from bot.clock import utcnow
from bot.config import Policy
from bot.console.app import Console, DemoUser
from bot.console.sample import PEOPLE, seed_sample
from bot.console.settings import ConsoleSettings
from bot.db import Database
from bot.markup import NameResolver
from bot.web import create_web_app

log = logging.getLogger(__name__)

DEMO_USERS = (
    DemoUser("U0DANA", "Dana Reyes", "SRE, Firebreak admin: sees every incident"),
    DemoUser("U0SAM", "Sam Okafor", "engineer: sees public incidents and their own private ones"),
)


class StaticDirectory:
    """A ``Directory`` from fixed lists (the demo's people, tests)."""

    def __init__(
        self,
        *,
        admins: Sequence[str] = (),
        groups: dict[str, set[str]] | None = None,
        channels: dict[str, set[str]] | None = None,
    ) -> None:
        self.admins = set(admins)
        self.groups = groups or {}
        self.channels = channels or {}

    def is_workspace_admin(self, user: str) -> bool:
        return user in self.admins

    def group_members(self, group: str) -> set[str]:
        return set(self.groups.get(group, set()))

    def channel_members(self, channel: str) -> set[str]:
        return set(self.channels.get(channel, set()))


class StaticNames:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def user(self, user_id: str) -> str | None:
        return self.users.get(user_id)

    def channel(self, channel_id: str) -> str | None:
        return None


def demo_console(
    database: Database,
    policy: Policy,
    *,
    directory: Directory,
    names: NameResolver | None = None,
    users: Sequence[DemoUser] = DEMO_USERS,
) -> Console:
    """A console whose sign-in page offers ``users`` (plain http cookies: it runs on localhost)."""
    settings = ConsoleSettings(
        _env_file=None, cookie_secure=False, session_secret=secrets.token_urlsafe(32)
    )
    return Console(database, policy, directory, settings, names=names, demo_users=users)


def demo_app(console: Console, database: Database) -> Starlette:
    return create_web_app(None, database, console=console)


def serve_console_demo(
    database: Database,
    policy: Policy,
    *,
    directory: Directory,
    names: NameResolver | None = None,
    users: Sequence[DemoUser] = DEMO_USERS,
    host: str = "127.0.0.1",
    port: int = 8000,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the console with the demo sign-in until interrupted (Ctrl-C)."""
    console = demo_console(database, policy, directory=directory, names=names, users=users)
    announce(f"Console: http://{host}:{port}/console/  (demo sign-in; Ctrl-C to stop)")
    uvicorn.run(
        demo_app(console, database),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


def sample_database(path: Path, policy: Policy) -> Database:
    """A SQLite database at ``path`` with the sample quarter of incidents."""
    url = f"sqlite:///{path}"
    migrations.upgrade(url)
    database = Database(url)
    seed_sample(database, policy, now=utcnow())
    return database


def sample_directory() -> Directory:
    return StaticDirectory(admins=["U0DANA"])


def sample_names() -> StaticNames:
    return StaticNames({p.user_id: p.name for p in PEOPLE})


def serve_sample_demo(policy: Policy, *, host: str = "127.0.0.1", port: int = 8000) -> int:
    """The console over a fresh sample quarter of incidents (no Slack at all)."""
    with tempfile.TemporaryDirectory(prefix="firebreak-console-") as tmp:
        database = sample_database(Path(tmp) / "demo.db", policy)
        try:
            serve_console_demo(
                database,
                policy,
                directory=sample_directory(),
                names=sample_names(),
                host=host,
                port=port,
            )
        finally:
            database.dispose()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot.console.demo [--port P]``: the console over a sample quarter of
    incidents, with the demo sign-in, until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.console.demo",
        description="Serve the web console over sample data with a demo sign-in.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    return serve_sample_demo(Policy(), host=args.host, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
