"""The real bot (Bolt app, Starlette, uvicorn) serving on a free local port, for end-to-end
tests and ``firebreak demo``."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import uvicorn

from bot.clock import utcnow
from bot.effects import store
from bot.observability import Workers
from bot.runtime import Firebreak
from bot.slack.app import build_bot
from bot.web import create_web_app

SERVER_THREAD = "http-server"
"""The name of every in-process HTTP server's thread, so a test can tell one is left running."""


class LocalBot:
    """``start()``, then send requests to ``events_url``; ``settle()`` waits until the work the
    bot acknowledged is done: what the worker pools do after the HTTP answer, and the effects
    (recorded requests, Slack calls) the effect runner executes."""

    def __init__(
        self,
        firebreak: Firebreak,
        *,
        signing_secret: str,
        threads: int = 4,
        worker_id: str | None = None,
        run_effects: bool = True,
        effect_interval: float = 0.05,
    ) -> None:
        """``effect_interval``: how often each effect thread looks for due work it was not
        woken for (retries, scheduled effects). Short by default, so tests see a retry at
        once; ``firebreak serve`` uses ``bot.slack.app.EFFECT_INTERVAL``."""
        self.firebreak = firebreak
        self.workers = Workers(work_threads=threads)
        self.slack = build_bot(
            firebreak, workers=self.workers, worker_id=worker_id, effect_interval=effect_interval
        )
        self.flows = self.slack.flows
        self.runner = self.slack.runner
        self.bolt = self.slack.app
        self.run_effects = run_effects
        web = create_web_app(
            self.bolt,
            firebreak.db,
            signing_secret=signing_secret,
            policy=firebreak.policy,  # the alert receiver's, as `firebreak serve` gives it
            catalog=firebreak.catalog,
        )
        config = uvicorn.Config(
            web, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=SERVER_THREAD, daemon=True)

    def start(self) -> LocalBot:
        if self.run_effects:
            self.runner.start()
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the bot's HTTP server did not start")
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    def settle(self, timeout: float = 30.0, *, within: float = 5.0) -> None:
        """Wait until the pools are idle and no effect is due within ``within`` seconds (a
        retry after a short backoff is waited for; one scheduled later is not)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        # Doubling to 50 ms: a long wait must not poll the database 100 times a second.
        pause = 0.005
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.workers.wait_idle(remaining):
                raise RuntimeError(f"the bot did not finish its work in {timeout:.0f} s")
            with self.firebreak.db.read() as session:
                due = store.count_due(session, now=utcnow() + timedelta(seconds=within))
            if due == 0 and not self.runner.busy:
                quiet += 1
                if quiet >= 2:  # twice in a row: nothing was between claim and commit
                    return
            else:
                quiet = 0
            if not self.run_effects and due:
                self.runner.run_until_idle(remaining)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.workers.shutdown(wait=True)
        self.runner.stop()
