"""The real bot (Bolt app, Starlette, uvicorn) serving on a free local port, for end-to-end
tests and ``firebreak demo``."""

from __future__ import annotations

import threading
import time

import uvicorn

from bot.observability import Workers
from bot.runtime import Firebreak
from bot.slack.app import build_app
from bot.slack.flows import IncidentFlows
from bot.web import create_web_app


class LocalBot:
    """``start()``, then send requests to ``events_url``; ``settle()`` waits until the work the
    bot acknowledged is done (it finishes on its worker pools after the HTTP answer)."""

    def __init__(self, firebreak: Firebreak, *, signing_secret: str, threads: int = 4) -> None:
        self.firebreak = firebreak
        self.workers = Workers(work_threads=threads)
        self.flows = IncidentFlows(firebreak)
        self.bolt = build_app(firebreak, flows=self.flows, workers=self.workers)
        web = create_web_app(self.bolt, firebreak.db, signing_secret=signing_secret)
        config = uvicorn.Config(
            web, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="firebreak-http", daemon=True)

    def start(self) -> LocalBot:
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

    def settle(self, timeout: float = 30.0) -> None:
        if not self.workers.wait_idle(timeout):
            raise RuntimeError(f"the bot did not finish its work in {timeout:.0f} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.workers.shutdown(wait=True)
