"""Whether Slack has answered: checked at start-up, retried in the background until it does.

A Slack outage or a network that is not up yet (DNS, a proxy, a NetworkPolicy) must not crash
the process: under Kubernetes that is a crash loop that also takes the health endpoints away.
So ``firebreak serve`` keeps serving, ``/readyz`` says ``slack unreachable`` with the reason, and
a background thread retries with exponential back-off until Slack answers; then the work that
needs Slack (Socket Mode's connection) starts. A token Slack rejects is different: no retry will
fix it, so it stays a one-line configuration error at start-up (exit 2).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.errors import ConfigError
from bot.runtime import Firebreak
from bot.slack.gateway import TOKEN_REJECTED, SlackCallError
from bot.slack.reminders import validate_reminder_targets

log = logging.getLogger(__name__)


def _network_reason(exc: OSError) -> str:
    reason = getattr(exc, "reason", None) or exc.strerror or exc
    return f"{type(exc).__name__}: {reason}"[:200]


RECHECK_EVERY = 60.0
"""Seconds between two ``auth.test`` calls made for ``/readyz`` while the token is accepted: a
token revoked while nothing calls Slack is noticed within this."""
RECHECK_REFUSED_EVERY = 15.0
"""The same while Slack refuses the token: readiness comes back once a new token (or the
reinstalled app's) is accepted, without waiting for other work to call Slack."""


class SlackReadiness:
    """``reason`` is ``None`` once Slack answered ``auth.test``, else why the bot is not ready."""

    def __init__(
        self,
        firebreak: Firebreak,
        *,
        first_delay: float = 1.0,
        max_delay: float = 60.0,
        recheck_every: float = RECHECK_EVERY,
        recheck_refused_every: float = RECHECK_REFUSED_EVERY,
    ) -> None:
        self.firebreak = firebreak
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.recheck_every = recheck_every
        self.recheck_refused_every = recheck_refused_every
        self.reason: str | None = "slack not checked yet"
        self.attempts = 0
        self._checked_at = time.monotonic()
        self._checking = threading.Lock()
        self._lock = threading.Lock()
        self._waiting: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self.reason is None

    def current(self) -> str | None:
        """Why the bot is not ready now: Slack not checked or unreachable, or the token Slack
        refused since (revoked, the app uninstalled): every Slack effect would fail. Once
        ready, the token is checked again from time to time (``auth.test``): a refusal makes
        the bot unready, an acceptance ready again; a Slack outage changes neither."""
        if self.reason is not None:
            return self.reason
        self._recheck_token()
        rejected = self.firebreak.gateway.token_rejected
        if rejected is not None:
            return f"slack refuses the bot token ({rejected}): check SLACK_BOT_TOKEN"
        return None

    def _recheck_token(self) -> None:
        """Start a check in the background when one is due: ``/readyz`` answers at once from
        what is known (a probe times out after a second; a Slack call may take ten)."""
        gateway = self.firebreak.gateway
        every = self.recheck_refused_every if gateway.token_rejected else self.recheck_every
        if time.monotonic() - self._checked_at < every or not self._checking.acquire(False):
            return
        self._checked_at = time.monotonic()
        threading.Thread(target=self._check_token, name="slack-token-check", daemon=True).start()

    def _check_token(self) -> None:
        try:
            # The gateway records a refusal and clears it on any call Slack accepts.
            self.firebreak.gateway.call("auth.test")
        except (SlackCallError, OSError):
            pass  # refused (recorded by the gateway) or unreachable (not a readiness matter)
        finally:
            self._checking.release()

    def check(self) -> bool:
        """Ask Slack once. ``ConfigError`` when the token is rejected or an escalation target
        is unknown; ``False`` (with ``reason`` set) when Slack cannot be reached."""
        self.attempts += 1
        try:
            self.firebreak.gateway.bot_user_id()
        except SlackCallError as exc:
            if exc.error in TOKEN_REJECTED:
                raise ConfigError(f"environment: SLACK_BOT_TOKEN: {exc}") from None
            return self._unreachable(exc.error)
        except OSError as exc:  # URLError, refused, reset, DNS failure, timeouts
            return self._unreachable(_network_reason(exc))
        validate_reminder_targets(self.firebreak)
        self._become_ready()
        return True

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` now if Slack has answered, else as soon as it does."""
        with self._lock:
            if not self.ready:
                self._waiting.append(callback)
                return
        callback()

    def start(self) -> None:
        """Retry in the background until Slack answers (nothing to do if it already has)."""
        if self.ready or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._retry, name="slack-readiness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _unreachable(self, why: str) -> bool:
        self.reason = f"slack unreachable ({why})"
        log.warning("Slack not reachable; serving unready and retrying", extra={"error": why})
        return False

    def _become_ready(self) -> None:
        with self._lock:
            self.reason = None
            waiting, self._waiting = self._waiting, []
        for callback in waiting:
            try:
                callback()
            except Exception:
                log.exception("start-up work that waited for Slack failed")

    def _retry(self) -> None:
        delay = self.first_delay
        while not self._stop.wait(delay):
            try:
                if self.check():
                    log.info("Slack answered; ready", extra={"attempts": self.attempts})
                    return
            except ConfigError as exc:
                # Found only now because Slack was down at start-up; exiting would not help
                # the operator more than a loud log line and an unready /readyz.
                self.reason = f"configuration: {exc}"
                log.error("Slack rejected the configuration", extra={"error": str(exc)[:300]})
            delay = min(delay * 2, self.max_delay)
