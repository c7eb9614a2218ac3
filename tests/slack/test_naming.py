from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.slack.naming import incident_channel_name, slugify

VALID = re.compile(r"^[a-z0-9_-]{1,80}$")
WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def name(
    title: str, pattern: str = "inc-{number}-{slug}", number: int = 42, attempt: int = 1
) -> str:
    return incident_channel_name(
        pattern, number=number, title=title, severity="SEV1", declared_at=WHEN, attempt=attempt
    )


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Checkout returns 500s", "inc-42-checkout-returns-500s"),
        ("Zahlungsausfall bei Überweisungen", "inc-42-zahlungsausfall-bei-uberweisungen"),
        ("🔥🔥 DB down!!!", "inc-42-db-down"),
        ("خدمة الدفع متوقفة", "inc-42"),
        ("支付服务中断", "inc-42"),
        ("  ", "inc-42"),
        ("a_b c--d", "inc-42-a-b-c-d"),
        # Letters that have no accent to strip are spelled, not dropped ("arza", "strae").
        ("Arıza: ödeme servisi çöktü", "inc-42-ariza-odeme-servisi-coktu"),
        ("Straße gesperrt", "inc-42-strasse-gesperrt"),
        ("Łódź: płatności nie działają", "inc-42-lodz-platnosci-nie-dzialaja"),
        ("Сбой оплаты в ЕС", "inc-42-sboy-oplaty-v-es"),
        ("Σφάλμα πληρωμών", "inc-42-sfalma-pliromon"),
        ("결제 장애", "inc-42-gyeolje-jangae"),
        # Chinese characters are read differently in Chinese and in Japanese: left out.
        ("決済 API 障害", "inc-42-api"),
        ("תקלה בתשלומים", "inc-42"),
    ],
)
def test_titles_become_valid_channel_names(title: str, expected: str) -> None:
    assert name(title) == expected


def test_long_titles_keep_the_number_and_fit_80_characters() -> None:
    result = name("x" * 3000)
    assert result.startswith("inc-42-") and len(result) <= 80
    words = name("word " * 500 + "end", pattern="incident-{date}-{severity}-{number}-{slug}")
    assert words.startswith("incident-20260501-sev1-42-") and len(words) <= 80


def test_retries_after_name_taken_get_a_suffix() -> None:
    assert name("db down", attempt=2) == "inc-42-db-down-2"
    assert len(name("y" * 200, attempt=10)) <= 80
    assert name("y" * 200, attempt=10).endswith("-10")


@given(
    st.text(max_size=400),
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=1, max_value=10),
)
def test_any_title_gives_a_name_slack_accepts(title: str, number: int, attempt: int) -> None:
    result = name(title, number=number, attempt=attempt)
    assert VALID.match(result), result
    assert str(number) in result


def test_slug_folds_accents() -> None:
    assert slugify("Café Crème: Überlast") == "cafe-creme-uberlast"
