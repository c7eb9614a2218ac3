"""The console in a real browser: headless Chromium from Debian's packages, driven by Selenium.

The browser is required: without /usr/bin/chromium and /usr/bin/chromedriver these tests fail
(install them with ``apt-get install chromium chromium-driver``; ``.ci/run`` does)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from bot import incidents
from bot.config import Policy
from bot.console import Console
from bot.db import Database
from bot.models import EventKind
from bot.web import create_web_app
from tests.console.conftest import (
    ADMIN,
    OUTSIDER,
    PRIVATE_CHANNEL,
    T0,
    MakeConsole,
    declare,
)
from tests.console.oidc_provider import OidcProvider, RunningServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chrome]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: install the browser with "
            "`apt-get install chromium chromium-driver` (CI's .ci/run does)"
        )
    profile = tempfile.mkdtemp(prefix="firebreak-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def served(make_console: MakeConsole, db: Database, browser: Chrome) -> Iterator[str]:
    """The console over HTTP on 127.0.0.1 (plain http, so cookies without Secure)."""
    console: Console = make_console(cookie_secure=False)
    browser.delete_all_cookies()
    with RunningServer(create_web_app(None, db, console=console)) as running:
        yield f"http://127.0.0.1:{running.port}"
    browser.delete_all_cookies()


def sign_in_with_slack(browser: Chrome, base: str, path: str = "/console/incidents") -> None:
    browser.get(base + path)
    assert "/console/auth/login" in browser.current_url
    browser.find_element(By.LINK_TEXT, "Sign in with Slack").click()
    WebDriverWait(browser, 15).until(lambda d: "/console/auth/" not in d.current_url)


def browser_log(browser: Chrome) -> list[dict[str, str]]:
    """What the page wrote to the console since the last call (CSP violations land here)."""
    return list(browser.get_log("browser"))  # type: ignore[no-untyped-call]


def csp_errors(browser: Chrome) -> list[str]:
    return [
        entry["message"]
        for entry in browser_log(browser)
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


def row_titles(browser: Chrome) -> list[str]:
    return [td.text for td in browser.find_elements(By.CSS_SELECTOR, "table.incidents td.title")]


def test_sign_in_with_slack_and_read_the_list(
    served: str, browser: Chrome, oidc: OidcProvider, db: Database, policy: Policy
) -> None:
    declare(db, policy, "Checkout returns 500s")
    oidc.user, oidc.name = ADMIN, "Ada Admin"
    browser_log(browser)
    sign_in_with_slack(browser, served, "/console/incidents")
    assert browser.current_url == f"{served}/console/incidents"
    assert browser.find_element(By.CSS_SELECTOR, ".who .user").text == "Ada Admin"
    assert row_titles(browser) == ["Checkout returns 500s"]
    # The one script ran under the CSP: times are in the browser's timezone, UTC on hover.
    WebDriverWait(browser, 5).until(
        lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("data-times") == "local"
    )
    declared = browser.find_element(By.CSS_SELECTOR, "table.incidents time")
    assert declared.get_attribute("title") == "2026-09-01 09:00:00 UTC"
    assert csp_errors(browser) == []


def test_filters_in_the_browser(
    served: str, browser: Chrome, oidc: OidcProvider, db: Database, policy: Policy
) -> None:
    declare(db, policy, "Checkout returns 500s", severity="SEV1", service="checkout")
    declare(db, policy, "Search is slow", severity="SEV3", service="search")
    declare(db, policy, "Login fails after deploy", severity="SEV1", service="auth")
    oidc.user = ADMIN
    sign_in_with_slack(browser, served)
    assert len(row_titles(browser)) == 3
    Select(browser.find_element(By.ID, "severity")).select_by_value("SEV1")
    browser.find_element(By.ID, "q").send_keys("deploy", Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda d: "q=deploy" in d.current_url)
    assert row_titles(browser) == ["Login fails after deploy"]
    assert browser.find_element(By.ID, "count").text == "1 incident"
    browser.find_element(By.LINK_TEXT, "Clear").click()
    assert len(row_titles(browser)) == 3
    browser.find_element(By.PARTIAL_LINK_TEXT, "Title").click()
    assert row_titles(browser) == [
        "Checkout returns 500s",
        "Login fails after deploy",
        "Search is slow",
    ]
    browser.find_element(By.PARTIAL_LINK_TEXT, "Title").click()
    assert row_titles(browser)[0] == "Search is slow"


def test_an_incident_page_with_its_timeline_by_keyboard(
    served: str, browser: Chrome, oidc: OidcProvider, db: Database, policy: Policy
) -> None:
    number = declare(db, policy, '<b>Checkout</b> returns 500s <script>alert("x")</script>')
    with db.transaction() as session:
        incident = incidents.find_incident(session, number)
        assert incident.id is not None
        incidents.add_note(session, policy, incident.id, "Rolled back", actor=ADMIN, now=T0)
        incidents.record_timeline_event(
            session,
            policy,
            incident.id,
            kind=EventKind.MESSAGE,
            text="Errors started at 14:02",
            source_url="https://acme.slack.com/archives/C1/p1712345678000100",
            now=T0 + timedelta(minutes=3),
        )
    oidc.user = ADMIN
    sign_in_with_slack(browser, served)
    link = browser.find_element(By.LINK_TEXT, f"INC-{number}")
    link.send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith(f"/incidents/{number}"))
    title = browser.find_element(By.CSS_SELECTOR, ".incident-head .title").text
    assert title == '<b>Checkout</b> returns 500s <script>alert("x")</script>'
    kinds = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".timeline .kind")]
    assert kinds == ["Declared", "Note", "Message"]
    slack = browser.find_element(By.LINK_TEXT, "View in Slack")
    assert slack.get_attribute("href") == "https://acme.slack.com/archives/C1/p1712345678000100"
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.text == "Skip to content"
    assert csp_errors(browser) == []


def test_a_private_incident_is_hidden_from_a_non_member(
    served: str, browser: Chrome, oidc: OidcProvider, db: Database, policy: Policy
) -> None:
    declare(db, policy, "Public outage")
    secret = declare(db, policy, "Leaked credential", private=True, channel=PRIVATE_CHANNEL)
    oidc.user, oidc.name = OUTSIDER, "Olly Outsider"
    sign_in_with_slack(browser, served)
    assert row_titles(browser) == ["Public outage"]
    browser.get(f"{served}/console/incidents/{secret}")
    assert browser.find_element(By.CSS_SELECTOR, ".message").text == (
        f"There is no incident INC-{secret} that you may see."
    )
    assert "Leaked credential" not in browser.page_source


def test_insights_chart_with_its_table(
    served: str, browser: Chrome, oidc: OidcProvider, db: Database, policy: Policy
) -> None:
    for n, severity in enumerate(("SEV1", "SEV2", "SEV2")):
        declare(db, policy, f"Incident {n}", severity=severity, at=T0 + timedelta(hours=n))
    oidc.user = ADMIN
    sign_in_with_slack(
        browser, served, "/console/insights?period=month&from=2026-08-01&to=2026-09-30"
    )
    chart = browser.find_element(By.CSS_SELECTOR, "#insight-severity svg.chart")
    bars = chart.find_elements(By.CSS_SELECTOR, "rect[height]:not([width='12'])")
    assert [b.find_element(By.TAG_NAME, "title").get_attribute("textContent") for b in bars] == [
        "Sep 2026 · SEV1: 1",
        "Sep 2026 · SEV2: 2",
    ]
    assert chart.size["width"] > 300
    section = browser.find_element(By.ID, "insight-severity")
    section.find_element(By.TAG_NAME, "summary").click()
    cells = [td.text for td in section.find_elements(By.CSS_SELECTOR, "tbody tr:last-child td")]
    assert cells == ["1", "2", "0", "0", "3"]
    csv_link = section.find_element(By.LINK_TEXT, "Download CSV")
    assert "/console/insights/severity.csv?period=month" in str(csv_link.get_attribute("href"))
    assert csp_errors(browser) == []
