"""The web console: incidents, timelines, postmortems and insights in the browser.

``bot.web`` mounts ``console_routes(console)`` under ``/console``; ``bot.console.demo`` serves it
with a local demo sign-in. See docs/console.md.
"""

from bot.console.app import Console, DemoUser, console_from_environment, console_routes
from bot.console.settings import ConsoleSettings, load_console_settings

__all__ = [
    "Console",
    "ConsoleSettings",
    "DemoUser",
    "console_from_environment",
    "console_routes",
    "load_console_settings",
]
