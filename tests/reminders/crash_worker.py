"""A process that dies in the middle of posting a reminder (run by test_delivery).

    python -m tests.reminders.crash_worker DATABASE_URL

It evaluates the due reminder (which queues its message as an effect) and, when the effect
runner is about to call Slack, prints ``sending`` and blocks until it is killed, so the test can
``SIGKILL`` it at exactly that point: the message claimed, nothing sent."""

from __future__ import annotations

import sys

from bot.config import Policy
from bot.db import Database
from bot.effects import kinds
from bot.effects.runner import Done, EffectRunner
from bot.effects.store import Claimed
from bot.reminders.worker import ReminderWorker

WORKER_ID = "doomed-worker"


def hang(item: Claimed) -> Done:
    if not item.key.startswith("reminder:"):
        return Done()
    print("sending", flush=True)
    sys.stdin.readline()  # never answered: the parent kills us here
    raise SystemExit("the parent was supposed to kill this process")


def main() -> None:
    database = Database(sys.argv[1])
    ReminderWorker(database, Policy(), worker_id=WORKER_ID).tick()
    handlers = {kind: hang for kind in vars(kinds).values() if isinstance(kind, str)}
    EffectRunner(database, handlers, worker_id=WORKER_ID, threads=0).run_until_idle()


if __name__ == "__main__":
    main()
