"""Firebreak: incident response for Slack."""

import os
import tempfile
from pathlib import Path

__version__ = "0.2.0.dev0"

try:
    Path.home()
except RuntimeError:
    # A container run as a user id with no passwd entry and no HOME (OpenShift, a bare `env
    # -i`) has no home directory, and Slack's SDK looks one up as it is imported (a default
    # it never uses here): every command died with a traceback. A temporary one will do.
    os.environ["HOME"] = tempfile.gettempdir()
