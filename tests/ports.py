"""Free local TCP ports for the processes the tests start.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` comes from the ephemeral range, the
same range it picks from for every outgoing connection. Between closing the probe and the child
process binding it, another test's HTTP client (four workers run at once) can take it, and
``serve`` then rightly exits with "the address is already in use". Ports here come from below
the ephemeral range, from a block of their own for each pytest worker, each used once, so nothing
else on the machine takes them in between."""

from __future__ import annotations

import itertools
import os
import random
import socket

_FIRST = 20000
"""Below Linux's default ephemeral range (32768-60999), so outgoing connections never use it."""
_BLOCK = 1000
"""Ports per pytest worker."""
_PER_RUN = 200
"""More than one worker of a run ever takes (a few dozen)."""


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw0", "gw1", ... or unset
    digits = worker.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


# From a random place in the block: two test runs on one machine (a CI job beside a developer's
# run) do not walk the same ports in step.
_candidates = itertools.count(
    _FIRST + _BLOCK * _worker_index() + random.randrange(_BLOCK - _PER_RUN)
)


def free_port() -> int:
    """A port nothing listens on now and that no other test of this run will be given."""
    for port in _candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # something on this machine holds it: take the next one
            return port
    raise AssertionError("unreachable: itertools.count never ends")
