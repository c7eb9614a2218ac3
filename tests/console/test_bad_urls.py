"""Numbers in console URLs that no incident, version or page can have: a clear 404 for a path, a
clear 400 for a query parameter, never a 500 (a number too large for the database, digits of
another script that ``str.isdigit`` accepts but ``int`` does not)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from bot import incidents
from bot.config import Policy, PostmortemPolicy
from bot.console import Console
from bot.db import Database
from bot.postmortem import generate_postmortem
from tests.console.conftest import ADMIN, T0, client_for, declare, sign_in

HUGE = "99999999999999999999999"  # more than any integer column holds
TOO_BIG = "2147483648"  # one more than the largest INTEGER


@pytest.fixture
def admin(console: Console) -> TestClient:
    client = client_for(console)
    sign_in(client, console, ADMIN)
    return client


@pytest.fixture
def number(db: Database, policy: Policy) -> int:
    number = declare(db, policy, "Checkout down")
    quiet = policy.model_copy(update={"postmortem": PostmortemPolicy(output_dir=None)})
    with db.transaction() as session:
        incident = incidents.find_incident(session, number)
        assert incident.id is not None
        generate_postmortem(session, quiet, incident.id, actor=ADMIN, key="pm-1", now=T0)
    return number


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (f"/console/incidents/{HUGE}", f"There is no incident &#39;{HUGE}&#39;."),
        (f"/console/incidents/{HUGE}/postmortem", f"There is no incident &#39;{HUGE}&#39;."),
        (f"/console/incidents/{HUGE}/export.json", f"There is no incident &#39;{HUGE}&#39;."),
        (f"/console/incidents/{HUGE}/postmortem-v1.md", f"There is no incident &#39;{HUGE}&#39;."),
        (f"/console/incidents/{TOO_BIG}", f"There is no incident &#39;{TOO_BIG}&#39;."),
        ("/console/incidents/0/export.json", "There is no incident &#39;0&#39;."),
        (
            "/console/incidents/{number}/postmortem-v" + HUGE + ".md",
            f"There is no postmortem version &#39;{HUGE}&#39;.",
        ),
    ],
)
def test_a_number_in_the_path_that_no_incident_can_have_is_a_clear_404(
    admin: TestClient, number: int, path: str, message: str
) -> None:
    answer = admin.get(path.format(number=number))
    assert answer.status_code == 404, answer.text[:500]
    assert message in answer.text
    assert "Traceback" not in answer.text


@pytest.mark.parametrize("name", ["version", "compare"])
@pytest.mark.parametrize(
    ("value", "shown"),
    [("²", "²"), ("١", "١"), (HUGE, HUGE[:20]), (TOO_BIG, TOO_BIG), ("0", "0"), ("+1", "+1")],
)
def test_a_postmortem_version_in_the_query_that_is_not_a_number_is_a_clear_400(
    admin: TestClient, number: int, name: str, value: str, shown: str
) -> None:
    answer = admin.get(f"/console/incidents/{number}/postmortem", params={name: value})
    assert answer.status_code == 400, answer.text[:500]
    assert (
        f"The {name} &#39;{shown}&#39; is not a version number: use a whole number from 1 to "
        "2147483647." in answer.text
    )
    assert "Traceback" not in answer.text


def test_a_page_number_in_another_script_is_a_clear_400(admin: TestClient, number: int) -> None:
    answer = admin.get("/console/incidents", params={"page": "١"})
    assert answer.status_code == 400
    assert "The page &#39;١&#39; is not a page number: use a whole number from 1." in answer.text


def test_ordinary_numbers_still_name_their_pages(admin: TestClient, number: int) -> None:
    assert admin.get(f"/console/incidents/{number}").status_code == 200
    assert admin.get(f"/console/incidents/00{number}").status_code == 200
    assert admin.get(f"/console/incidents/{number}/postmortem?version=1").status_code == 200
    assert admin.get(f"/console/incidents/{number}/postmortem-v1.md").status_code == 200
    assert admin.get(f"/console/incidents/{number}/export.json").status_code == 200
    assert admin.get("/console/incidents?page=1").status_code == 200
