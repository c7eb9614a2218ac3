"""Firebreak: incident response for Slack."""

__version__ = "0.2.0.dev0"
