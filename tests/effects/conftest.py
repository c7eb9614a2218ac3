"""The end-to-end fixtures (the real bot over HTTP against the fake Slack)."""

from tests.e2e.conftest import bot, e2e_policy, fake, slack

__all__ = ["bot", "e2e_policy", "fake", "slack"]
