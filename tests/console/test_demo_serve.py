"""``firebreak demo --serve``: after the incident, the console serves the demo's data."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx2

from tests.ports import free_port


def test_demo_serve_shows_the_demo_incident_in_the_console(
    new_database_url: Callable[[], str], tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": new_database_url()}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        with httpx2.Client(base_url=base, follow_redirects=False, timeout=10) as client:
            while True:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the console did not start"
                try:
                    login = client.get("/console/auth/login")
                    break
                except httpx2.TransportError:
                    time.sleep(0.5)
            people = re.findall(r'name="user" value="([^"]+)"', login.text)
            assert len(people) == 2
            assert "Ana García" in login.text and "Chloé Martin" in login.text
            token = re.search(r'name="token" value="([^"]+)"', login.text)
            assert token is not None
            signed = client.post(
                "/console/auth/demo", data={"token": token.group(1), "user": people[0]}
            )
            assert signed.status_code == 303
            page = client.get("/console/incidents/1")
            assert page.status_code == 200
            kinds = re.findall(r'<li class="ev ev-([a-z_]+)">', page.text)
            assert kinds[0] == "declared"
            assert "postmortem_generated" in kinds
            assert client.get("/console/insights").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()
