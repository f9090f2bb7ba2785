"""Which deadline ends a try: the mesh's own timeout or the caller's budget."""

from __future__ import annotations

from ec_recommend.platform.rpc.budget import CallBudget


def test_without_a_caller_deadline_the_mesh_timeout_bounds_every_try() -> None:
    budget = CallBudget.start(5.0, explicit=None, travelled=None)
    first = budget.next_try(cap=None)
    assert not first.callers
    assert 4.0 < first.time_remaining() <= 5.0
    capped = budget.next_try(cap=1.0)
    assert not capped.callers
    assert capped.time_remaining() <= 1.0


def test_a_shorter_travelled_deadline_is_the_callers() -> None:
    budget = CallBudget.start(5.0, explicit=None, travelled=0.002)
    attempt = budget.next_try(cap=1.0)
    assert attempt.callers
    assert attempt.time_remaining() <= 0.002
    assert budget.time_remaining() <= 0.002


def test_an_explicit_timeout_is_the_callers_too() -> None:
    budget = CallBudget.start(5.0, explicit=0.5, travelled=30.0)
    assert budget.next_try(cap=None).callers


def test_a_longer_caller_deadline_leaves_the_mesh_in_charge() -> None:
    budget = CallBudget.start(5.0, explicit=None, travelled=15.0)
    assert not budget.next_try(cap=None).callers
    # the per-try cap is the mesh's own bound as well
    assert not CallBudget.start(5.0, explicit=None, travelled=3.0).next_try(cap=1.0).callers


def test_a_spent_caller_deadline_leaves_no_time() -> None:
    budget = CallBudget.start(5.0, explicit=None, travelled=-1.0)
    attempt = budget.next_try(cap=None)
    assert attempt.callers
    assert attempt.time_remaining() == 0
