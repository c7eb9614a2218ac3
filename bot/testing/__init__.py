"""The real bot serving on a free local port (``harness.LocalBot``), for end-to-end tests and
``firebreak demo``; the Slack it talks to is ``bot.sandbox``."""
