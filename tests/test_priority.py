"""Acknowledgements first: background work waits while a request is answered, and never while it
holds a transaction (a paused thread must not hold the lock a request waits for)."""

from __future__ import annotations

import threading

import pytest

from bot import priority

FOREVER = 60.0
"""The pause bound for these tests: a thread that should not wait would be seen waiting."""


@pytest.fixture(autouse=True)
def long_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(priority, "LONGEST_PAUSE", FOREVER)


def start(order: list[str], *, background: bool = True, holding: bool = False) -> threading.Thread:
    def run() -> None:
        if background:
            priority.run_in_background()
        if holding:
            with priority.holding():
                priority.pause_point()
        else:
            priority.pause_point()
        order.append("work")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_background_work_waits_until_the_answer_is_sent() -> None:
    order: list[str] = []
    with priority.REQUESTS_IN_FLIGHT:
        worker = start(order)
        worker.join(0.2)
        assert worker.is_alive() and order == []  # waiting at its pause point
        order.append("answer sent")
    worker.join(10)
    assert order == ["answer sent", "work"]


def test_background_work_holding_a_transaction_does_not_wait() -> None:
    order: list[str] = []
    with priority.REQUESTS_IN_FLIGHT:
        worker = start(order, holding=True)
        worker.join(10)
        assert not worker.is_alive()  # done while the request is still in flight
    assert order == ["work"]


def test_a_request_thread_never_waits_for_other_requests() -> None:
    order: list[str] = []
    with priority.REQUESTS_IN_FLIGHT:
        worker = start(order, background=False)
        worker.join(10)
        assert not worker.is_alive()
    assert order == ["work"]
