"""A Firebreak replica in its own process, for the ``kill -9`` tests.

    python -m tests.effects.replica DATABASE_URL SLACK_API_URL TOKEN ANNOUNCE_CHANNEL [--idle]

It serves the real bot on a free port, prints its ``/slack/events`` URL and serves until it is
killed. ``--idle`` records and acknowledges requests but executes no effects (a replica that
dies right after acknowledging)."""

from __future__ import annotations

import sys
import threading

from bot.config import Policy, Settings, SlackPolicy
from bot.runtime import Firebreak
from bot.testing.harness import LocalBot

SECRET = "8f14e45fceea167a5a36dedd4bea2543"


def main() -> None:
    database_url, api_url, token, announce = sys.argv[1:5]
    settings = Settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=api_url,
    )
    policy = Policy(slack=SlackPolicy(announcements_channel=announce))
    bot = LocalBot(
        Firebreak.create(settings, policy),
        signing_secret=SECRET,
        run_effects="--idle" not in sys.argv,
    ).start()
    print(bot.events_url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
