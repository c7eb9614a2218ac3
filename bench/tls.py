"""What one Slack Web API call costs Firebreak's process over HTTPS, against plain HTTP.

    python bench/tls.py               # 200 calls of each kind
    python bench/tls.py --calls 500

``chat.postMessage`` to the fake Slack, served over plain HTTP (the floor: the same call with
no TLS) and over HTTPS with a self-signed certificate. The client trusts it through
``SSL_CERT_FILE``: the system's CA bundle with the fake's certificate added, so loading the
trust store costs what it costs in production.
Each figure is the CPU time of the calling thread alone (the fake's threads are not counted)
and the wall time per call, one call after another:

* ``https, kept open``: the gateway as Firebreak builds it (``build_client``): one TLS context,
  and connections kept open and reused (``bot.slack.transport``);
* ``https, new connections``: the SDK's own ``WebClient`` with that one context, which opens a
  connection (and does a TLS handshake) for every call, as Firebreak did before;
* ``https, a context per call``: a ``WebClient`` without ``ssl=``, as before that: Python builds
  a default context for each connection, loading every system CA certificate.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from slack_sdk import WebClient

from bot.sandbox import FakeSlack
from bot.sandbox.tls import self_signed, trust_store
from bot.slack.gateway import CALL_TIMEOUT, SlackGateway, build_client


def measure(call: Callable[[], object], count: int) -> tuple[float, float]:
    """Median wall ms and mean CPU ms (this thread) per call."""
    for _ in range(10):
        call()  # warm-up: imports, first connections
    walls = []
    cpu = time.thread_time()
    for _ in range(count):
        started = time.perf_counter()
        call()
        walls.append(time.perf_counter() - started)
    return statistics.median(walls) * 1000, (time.thread_time() - cpu) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls of each kind (200)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    rows: list[tuple[str, float, float]] = []
    with FakeSlack(seed=1) as plain:
        gateway = SlackGateway(build_client(plain.token, plain.api_url))
        channel = plain.channel_id("incidents")
        rows.append(
            ("http (floor)", *measure(lambda: gateway.post_message(channel, "x"), args.calls))
        )
    with tempfile.TemporaryDirectory() as directory:
        certificate = self_signed(Path(directory))
        print(f"trust store: {ssl.get_default_verify_paths().cafile} and the fake's certificate")
        os.environ["SSL_CERT_FILE"] = str(trust_store(certificate, Path(directory)))
        with FakeSlack(seed=1, tls=certificate) as secure:
            channel = secure.channel_id("incidents")
            shared = SlackGateway(build_client(secure.token, secure.api_url))
            rows.append(
                (
                    "https, kept open",
                    *measure(lambda: shared.post_message(channel, "x"), args.calls),
                )
            )
            fresh = SlackGateway(
                WebClient(
                    token=secure.token,
                    base_url=secure.api_url,
                    timeout=CALL_TIMEOUT,
                    retry_handlers=[],
                    ssl=ssl.create_default_context(),
                )
            )
            rows.append(
                (
                    "https, new connections",
                    *measure(lambda: fresh.post_message(channel, "x"), args.calls),
                )
            )
            per_call = SlackGateway(
                WebClient(
                    token=secure.token,
                    base_url=secure.api_url,
                    timeout=CALL_TIMEOUT,
                    retry_handlers=[],
                )
            )
            rows.append(
                (
                    "https, a context per call",
                    *measure(lambda: per_call.post_message(channel, "x"), args.calls),
                )
            )
    floor_wall, floor_cpu = rows[0][1], rows[0][2]
    print(
        f"{'chat.postMessage':<28} {'wall p50 ms':>11} {'x floor':>8} {'CPU ms':>8} {'x floor':>8}"
    )
    for name, wall, cpu in rows:
        print(f"{name:<28} {wall:11.2f} {wall / floor_wall:8.1f} {cpu:8.2f} {cpu / floor_cpu:8.1f}")


if __name__ == "__main__":
    main()
