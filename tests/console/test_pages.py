"""The console's pages over HTTP: security headers, filters, bad input, visibility, downloads."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta

import pytest
from starlette.testclient import TestClient

from bot import incidents
from bot.config import Policy, PostmortemPolicy
from bot.console import Console
from bot.db import Database
from bot.models import EventKind
from bot.postmortem import generate_postmortem
from tests.console.conftest import (
    ADMIN,
    MEMBER,
    OUTSIDER,
    PRIVATE_CHANNEL,
    T0,
    client_for,
    declare,
    sign_in,
)

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def admin(console: Console) -> TestClient:
    client = client_for(console)
    sign_in(client, console, ADMIN)
    return client


def count(page: str) -> int:
    match = re.search(r'<p class="count" id="count">([\d,]+) incident', page)
    assert match is not None, page[:2000]
    return int(match.group(1).replace(",", ""))


def refs(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<td><a href="/console/incidents/(\d+)">', page)]


def test_pages_carry_the_security_headers_and_no_inline_script(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    number = declare(db, policy, "Checkout down")
    for path in (
        "/console/incidents",
        f"/console/incidents/{number}",
        "/console/insights",
        "/console/auth/login",
    ):
        answer = admin.get(path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
        assert re.findall(r"<script(?![^>]*\bsrc=)", answer.text) == []
        assert re.findall(r"\son[a-z]+=", answer.text) == []
        assert " style=" not in answer.text
    static = admin.get("/console/static/console.js")
    assert static.status_code == 200
    assert static.headers["x-content-type-options"] == "nosniff"


def test_filters_by_status_severity_service_dates_and_text(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    a = declare(db, policy, "Checkout returns 500s", severity="SEV1", service="checkout")
    b = declare(
        db, policy, "Search is slow", severity="SEV3", service="search", at=T0 + timedelta(days=3)
    )
    c = declare(
        db, policy, "Login fails", severity="SEV2", service="auth", at=T0 + timedelta(days=9)
    )
    with db.transaction() as session:
        incident = incidents.find_incident(session, b)
        assert incident.id is not None
        incidents.resolve_incident(
            session, policy, incident.id, actor=ADMIN, now=T0 + timedelta(days=4)
        )

    page = admin.get("/console/incidents").text
    assert count(page) == 3
    assert refs(page) == [c, b, a]
    assert refs(admin.get("/console/incidents", params={"status": "resolved"}).text) == [b]
    both = admin.get("/console/incidents", params=[("severity", "SEV1"), ("severity", "SEV2")])
    assert refs(both.text) == [c, a]
    assert refs(admin.get("/console/incidents", params={"service": "auth"}).text) == [c]
    window = {
        "from": (T0 + timedelta(days=1)).date().isoformat(),
        "to": (T0 + timedelta(days=5)).date().isoformat(),
    }
    assert refs(admin.get("/console/incidents", params=window).text) == [b]
    assert refs(admin.get("/console/incidents", params={"q": "LOGIN"}).text) == [c]
    assert refs(admin.get("/console/incidents", params={"q": f"INC-{a}"}).text) == [a]
    oldest_first = admin.get("/console/incidents", params={"sort": "declared", "order": "asc"})
    assert refs(oldest_first.text) == [a, b, c]
    by_title = admin.get("/console/incidents", params={"sort": "title", "order": "asc"})
    assert refs(by_title.text) == [a, c, b]


def test_pages_of_fifty(admin: TestClient, db: Database, policy: Policy) -> None:
    numbers = [
        declare(db, policy, f"Incident {i}", at=T0 + timedelta(minutes=i)) for i in range(51)
    ]
    first = admin.get("/console/incidents")
    assert count(first.text) == 51
    assert len(refs(first.text)) == 50
    assert "page 1 of 2" in first.text
    second = admin.get("/console/incidents", params={"page": "2"})
    assert refs(second.text) == [numbers[0]]
    beyond = admin.get("/console/incidents", params={"page": "3"})
    assert beyond.status_code == 404
    assert "There is no page 3: the list has 2 pages." in beyond.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page": "-1"}, "The page '-1' is not a page number: use a whole number from 1."),
        ({"page": str(10**12)}, "The page '1000000000000' is not a page number"),
        ({"page": "0"}, "The page '0' is not a page number"),
        ({"page": "two"}, "The page 'two' is not a page number"),
        ({"q": "x" * 10_000}, "The search text is 10,000 characters long; the limit is 200."),
        ({"status": "on-fire"}, "Unknown status 'on-fire': choose from triage, investigating"),
        ({"severity": "SEV9"}, "Unknown severity 'SEV9': choose from SEV1, SEV2, SEV3, SEV4."),
        ({"sort": "id; DROP TABLE incidents"}, "Cannot sort by 'id; DROP TABLE incidents'"),
        ({"order": "sideways"}, "The order is 'asc' or 'desc'."),
        ({"from": "yesterday"}, "The from date 'yesterday' is not a date: use YYYY-MM-DD."),
        ({"from": "2026-09-10", "to": "2026-09-01"}, "The 'from' date is after the 'to' date."),
        (
            {"to": "9999-12-31"},
            "The to date 9999-12-31 is out of range: use a date from 1970-01-01 to 9998-12-31.",
        ),
        ({"from": "0001-01-01"}, "The from date 0001-01-01 is out of range"),
        # PostgreSQL's text cannot hold a NUL: a query with one failed there (500).
        ({"q": "INC-\x00"}, "The search text contains a NUL character (%00): remove it."),
        ({"service": "\x00"}, "The service contains a NUL character (%00): remove it."),
        ({"from": "2026-01-01\x00"}, "The from date contains a NUL character (%00): remove it."),
    ],
)
def test_bad_filters_are_refused_with_a_clear_message(
    admin: TestClient, db: Database, policy: Policy, params: dict[str, str], message: str
) -> None:
    declare(db, policy, "Checkout down")
    answer = admin.get("/console/incidents", params=params)
    assert answer.status_code == 400
    assert message.replace("'", "&#39;") in answer.text
    assert "Traceback" not in answer.text


def test_sql_metacharacters_are_searched_as_text(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    percent = declare(db, policy, "50% of requests fail")
    declare(db, policy, "5000 errors an hour")
    quote = declare(db, policy, "O'Brien's job; DROP TABLE incidents; --")
    assert refs(admin.get("/console/incidents", params={"q": "50%"}).text) == [percent]
    assert refs(admin.get("/console/incidents", params={"q": "_0"}).text) == []
    assert refs(admin.get("/console/incidents", params={"q": "' OR '1'='1"}).text) == []
    assert refs(admin.get("/console/incidents", params={"q": "; DROP TABLE"}).text) == [quote]
    odd = admin.get("/console/incidents", params={"service": "x' OR 1=1 --"})
    assert odd.status_code == 200
    assert count(odd.text) == 0
    assert count(admin.get("/console/incidents").text) == 3


def test_search_ignores_case_in_every_alphabet_on_both_backends(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    failed = declare(db, policy, "Échec des paiements en Europe")
    greek = declare(db, policy, "ΣΦΆΛΜΑ στις πληρωμές", service="Πληρωμές")
    declare(db, policy, "Checkout down")
    assert refs(admin.get("/console/incidents", params={"q": "échec"}).text) == [failed]
    assert refs(admin.get("/console/incidents", params={"q": "ÉCHEC DES"}).text) == [failed]
    assert refs(admin.get("/console/incidents", params={"q": "σφάλμα"}).text) == [greek]
    assert refs(admin.get("/console/incidents", params={"q": "πληρωμές"}).text) == [greek]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_incidents_without_a_service_come_last_in_either_order(
    admin: TestClient, db: Database, policy: Policy, order: str
) -> None:
    payments = declare(db, policy, "Payments down", service="payments")
    nothing = declare(db, policy, "Something odd", service=None)
    api = declare(db, policy, "API slow", service="api")
    params = {"sort": "service", "order": order}
    listed = refs(admin.get("/console/incidents", params=params).text)
    assert listed == ([api, payments] if order == "asc" else [payments, api]) + [nothing]


def test_html_in_a_title_is_shown_as_text_everywhere(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    number = declare(db, policy, HOSTILE)
    with db.transaction() as session:
        incident = incidents.find_incident(session, number)
        assert incident.id is not None
        incidents.add_note(session, policy, incident.id, f"note {HOSTILE}", actor=ADMIN, now=T0)
        quiet = policy.model_copy(update={"postmortem": PostmortemPolicy(output_dir=None)})
        generate_postmortem(session, quiet, incident.id, actor=ADMIN, key="pm-1", now=T0)
    for path in (
        "/console/incidents",
        f"/console/incidents/{number}",
        f"/console/incidents/{number}/postmortem",
    ):
        page = admin.get(path).text
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
        assert "&lt;script&gt;alert(" in page, path


def test_only_http_links_to_slack_become_links(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    number = declare(db, policy, "Checkout down")
    with db.transaction() as session:
        incident = incidents.find_incident(session, number)
        assert incident.id is not None
        for n, url in enumerate(
            ["https://acme.slack.com/archives/C1/p1712345678000100", "javascript:alert(1)"]
        ):
            incidents.record_timeline_event(
                session,
                policy,
                incident.id,
                kind=EventKind.MESSAGE,
                text=f"message {n}",
                source_url=url,
                now=T0 + timedelta(minutes=n + 1),
            )
    page = admin.get(f"/console/incidents/{number}").text
    assert 'href="https://acme.slack.com/archives/C1/p1712345678000100"' in page
    assert "javascript:" not in page
    assert page.count("View in Slack") == 1


def test_only_http_links_in_a_postmortem_become_links(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    number = declare(db, policy, "Checkout down")
    note = (
        "Dashboards: <https://grafana.example/d/1|grafana>, [elsewhere](//evil.example/phish), "
        "[logout](/console/auth/logout), [ftp](ftp://files.example/a), [call](tel:+100)"
    )
    with db.transaction() as session:
        incident = incidents.find_incident(session, number)
        assert incident.id is not None
        incidents.add_note(session, policy, incident.id, note, actor=ADMIN, now=T0)
        quiet = policy.model_copy(update={"postmortem": PostmortemPolicy(output_dir=None)})
        generate_postmortem(session, quiet, incident.id, actor=ADMIN, key="pm-1", now=T0)
    page = admin.get(f"/console/incidents/{number}/postmortem").text
    links = re.findall(r'<a href="([^"]*)"', page)
    assert "https://grafana.example/d/1" in links
    for refused in ("//evil.example", "/console/auth/logout", "ftp://", "tel:"):
        assert not any(link.startswith(refused) for link in links), refused


def test_private_incidents_only_for_members_and_admins(
    console: Console, db: Database, policy: Policy
) -> None:
    public = declare(db, policy, "Public outage")
    secret = declare(db, policy, "Leaked credential", private=True, channel=PRIVATE_CHANNEL)
    early = declare(db, policy, "Private, no channel yet", private=True, reporter=OUTSIDER)
    seen = {}
    for user in (ADMIN, MEMBER, OUTSIDER):
        with client_for(console) as client:
            sign_in(client, console, user)
            seen[user] = refs(client.get("/console/incidents").text)
            page = client.get(f"/console/incidents/{secret}")
            export = client.get(f"/console/incidents/{secret}/export.json")
            if user == OUTSIDER:
                assert page.status_code == 404
                assert "Leaked credential" not in page.text
                assert export.status_code == 404
                assert client.get(f"/console/incidents/{secret}/postmortem").status_code == 404
                csv_text = client.get(
                    "/console/insights/severity.csv",
                    params={"from": "2026-08-01", "to": "2026-09-30", "period": "month"},
                ).text
                assert csv_text.splitlines()[2] == "2026-09,0,2,0,0,2"
            else:
                assert page.status_code == 200
                assert "Leaked credential" in page.text
                assert export.status_code == 200
    assert seen[ADMIN] == [early, secret, public]
    assert seen[MEMBER] == [secret, public]
    assert seen[OUTSIDER] == [early, public]


def test_a_private_incident_declared_after_someone_looked_stays_hidden_from_them(
    console: Console, db: Database, policy: Policy
) -> None:
    # The visibility worked out for a viewer is reused for a few seconds: it must name what
    # they may see, not "every private incident" because there were none a moment ago.
    public = declare(db, policy, "Public outage")
    with client_for(console) as outsider, client_for(console) as member:
        sign_in(outsider, console, OUTSIDER)
        sign_in(member, console, MEMBER)
        assert refs(outsider.get("/console/incidents").text) == [public]
        assert refs(member.get("/console/incidents").text) == [public]
        secret = declare(db, policy, "Leaked credential", private=True, channel=PRIVATE_CHANNEL)
        elsewhere = declare(db, policy, "HR case", private=True, channel="C0ELSEWHERE")

        listed = outsider.get("/console/incidents").text
        csv_text = outsider.get(
            "/console/insights/severity.csv",
            params={"from": "2026-08-01", "to": "2026-09-30", "period": "month"},
        ).text
        assert refs(listed) == [public]
        assert "Leaked credential" not in listed and "HR case" not in listed
        assert csv_text.splitlines()[2] == "2026-09,0,1,0,0,1"
        assert "HR case" not in member.get("/console/incidents").text
    assert secret and elsewhere


def test_incident_page_tells_the_whole_story(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    number = declare(db, policy, "Checkout down")
    with db.transaction() as session:
        incident = incidents.find_incident(session, number)
        iid = incident.id
        assert iid is not None
        incidents.assign_role(
            session, policy, iid, "commander", MEMBER, actor=ADMIN, now=T0 + timedelta(minutes=2)
        )
        incidents.assign_role(
            session, policy, iid, "commander", ADMIN, actor=ADMIN, now=T0 + timedelta(minutes=9)
        )
        incidents.add_action_item(
            session, policy, iid, "Add an alert", actor=ADMIN, due_on=date(2026, 9, 2), now=T0
        )
        incidents.add_action_item(session, policy, iid, "Write the runbook", actor=ADMIN, now=T0)
        incidents.record_timeline_event(
            session,
            policy,
            iid,
            kind=EventKind.ESCALATED,
            text="Escalated to @platform",
            now=T0 + timedelta(minutes=6),
        )
    page = admin.get(f"/console/incidents/{number}").text
    assert re.findall(r'<li class="ev ev-([a-z_]+)">', page) == [
        "declared",
        "action_item_added",
        "action_item_added",
        "role_assigned",
        "escalated",
        "role_assigned",
    ]
    roles = re.findall(
        r"<tr( class=\"current\")?>\s*<td>Incident Commander</td>\s*<td>([^<]+)</td>", page
    )
    assert roles == [("", "Mo Member"), (' class="current"', "Ada Admin")]
    assert "Mo Member" in page and "Ada Admin" in page
    assert "Escalated to @platform" in page
    assert '<span class="tag overdue">overdue</span>' in page
    assert "Add an alert" in page and "Write the runbook" in page
    assert "No alerts are attached." in page


def test_postmortem_versions_diff_and_downloads(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    number = declare(db, policy, "Checkout down")
    quiet = policy.model_copy(update={"postmortem": PostmortemPolicy(output_dir=None)})
    with db.transaction() as session:
        incident = incidents.find_incident(session, number)
        assert incident.id is not None
        generate_postmortem(
            session, quiet, incident.id, actor=ADMIN, key="v1", now=T0 + timedelta(hours=1)
        )
        incidents.add_note(
            session,
            policy,
            incident.id,
            "Found the bad config flag",
            actor=ADMIN,
            now=T0 + timedelta(hours=2),
        )
        generate_postmortem(
            session, quiet, incident.id, actor=ADMIN, key="v2", now=T0 + timedelta(hours=3)
        )
    page = admin.get(
        f"/console/incidents/{number}/postmortem", params={"version": "2", "compare": "1"}
    )
    assert page.status_code == 200
    added = re.findall(r'<span class="add">([^<]*)</span>', page.text)
    assert any("Found the bad config flag" in line for line in added)
    assert "<h1>" in page.text  # rendered markdown
    missing = admin.get(f"/console/incidents/{number}/postmortem", params={"version": "9"})
    assert missing.status_code == 400
    assert "There is no postmortem version 9." in missing.text
    md = admin.get(f"/console/incidents/{number}/postmortem-v1.md")
    assert md.headers["content-type"].startswith("text/markdown")
    assert md.headers["content-disposition"] == f'attachment; filename="INC-{number}-v1.md"'
    assert "Found the bad config flag" not in md.text
    exported = admin.get(f"/console/incidents/{number}/export.json")
    data = json.loads(exported.text)
    assert data["format"] == "firebreak.incident/v1"
    assert data["incident"]["ref"] == f"INC-{number}"


def test_insights_page_and_csv(admin: TestClient, db: Database, policy: Policy) -> None:
    declare(db, policy, '=HYPERLINK("http://evil")', service="=cmd|' /C calc'!A0")
    params = {"period": "month", "from": "2026-08-01", "to": "2026-09-30"}
    page = admin.get("/console/insights", params=params)
    assert page.status_code == 200
    assert page.text.count("<svg") == 9
    assert page.text.count("Download CSV") == 9
    assert "up to the end of the period shown (or now, if sooner)" in page.text
    answer = admin.get("/console/insights/service.csv", params=params)
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["period", "'=cmd|' /C calc'!A0", "total"]
    assert rows[1:] == [["2026-08", "0", "0"], ["2026-09", "1", "1"]]
    assert admin.get("/console/insights/nope.csv", params=params).status_code == 404
    bad = admin.get("/console/insights", params={"period": "decade"})
    assert bad.status_code == 400
    assert "The period is &#39;week&#39; or &#39;month&#39;" in bad.text
    long = admin.get("/console/insights", params={"period": "week", "from": "2000-01-01"})
    assert long.status_code == 400
    assert "more than 260 weeks" in long.text
    end = admin.get("/console/insights", params={"period": "month", "to": "9999-12-31"})
    assert end.status_code == 400
    assert "The to date 9999-12-31 is out of range" in end.text


def test_a_retracted_event_and_its_retraction_are_not_shown(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    number = declare(db, policy, "Checkout down")
    with db.transaction() as session:
        incident = incidents.find_incident(session, number)
        assert incident.id is not None
        kept = incidents.add_note(session, policy, incident.id, "Kept note", actor=ADMIN, now=T0)
        gone = incidents.add_note(session, policy, incident.id, "Wrong note", actor=ADMIN, now=T0)
        assert kept.event is not None and gone.event is not None and gone.event.id is not None
        incidents.retract_event(
            session, policy, incident.id, gone.event.id, actor=ADMIN, now=T0 + timedelta(minutes=1)
        )
    page = admin.get(f"/console/incidents/{number}").text
    assert re.findall(r'<li class="ev ev-([a-z_]+)">', page) == ["declared", "note"]
    assert "Kept note" in page
    assert "Wrong note" not in page


def test_the_summary_reads_as_typed_and_is_found_by_what_was_typed(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    """The summary is kept in Slack's markup, as the declare form stores it: shown and
    searched as it reads in Slack, not as ``&lt;b&gt;``."""
    with db.transaction() as session:
        number = incidents.declare_incident(
            session,
            policy,
            title="Card payments failing",
            reporter=ADMIN,
            summary="EU cards fail &lt;b&gt;at 3DS&lt;/b&gt; &amp; retries, seen by <@U0MEMBER>",
        ).incident.number
    declare(db, policy, "Checkout down")
    page = admin.get(f"/console/incidents/{number}").text
    assert (
        '<p class="summary">EU cards fail &lt;b&gt;at 3DS&lt;/b&gt; &amp; retries, seen by @'
    ) in page
    assert "&amp;lt;" not in page
    assert refs(admin.get("/console/incidents", params={"q": "<b>at 3DS"}).text) == [number]
    assert refs(admin.get("/console/incidents", params={"q": "& retries"}).text) == [number]


def test_the_role_table_of_a_closed_incident_ends_its_roles_at_the_close(
    admin: TestClient, db: Database, policy: Policy
) -> None:
    """The commander kept the role until the incident closed at 11:00: the table says so (the
    postmortem's "end of the incident"), not "now"."""
    number = declare(db, policy, "Checkout down")
    with db.transaction() as session:
        iid = incidents.find_incident(session, number).id
        assert iid is not None
        incidents.assign_role(session, policy, iid, "commander", ADMIN, actor=ADMIN, now=T0)
        incidents.close_incident(session, policy, iid, actor=ADMIN, now=T0 + timedelta(hours=2))
    page = admin.get(f"/console/incidents/{number}")
    assert page.status_code == 200
    roles = page.text[page.text.index('<section id="roles">') :]
    roles = roles[: roles.index("</section>")]
    assert "<strong>now</strong>" not in roles
    assert 'class="current"' not in roles
    assert "2026-09-01 11:00 UTC</time> (end of the incident)" in roles
