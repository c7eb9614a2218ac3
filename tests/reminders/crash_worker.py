"""A reminder worker process that dies in the middle of sending (run by test_delivery).

    python -m tests.reminders.crash_worker DATABASE_URL

It claims due reminders and, when the first message is about to go to Slack, prints
``sending`` and blocks until it is killed, so the test can ``SIGKILL`` it at exactly that
point: claimed, nothing sent, nothing finished."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from bot.config import Policy
from bot.db import Database
from bot.reminders import ReminderWorker

WORKER_ID = "doomed-worker"


class HangingNotifier:
    def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> str:
        print("sending", flush=True)
        sys.stdin.readline()  # never answered: the parent kills us here
        raise SystemExit("the parent was supposed to kill this process")

    def user_groups(self) -> Mapping[str, str]:
        return {}


def main() -> None:
    worker = ReminderWorker(Database(sys.argv[1]), Policy(), HangingNotifier(), worker_id=WORKER_ID)
    worker.tick()


if __name__ == "__main__":
    main()
