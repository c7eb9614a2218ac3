"""Firebreak: incident response for Slack."""

__version__ = "0.1.0"
