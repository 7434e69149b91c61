"""The core exception hierarchy."""

from __future__ import annotations

from cqrs_ddd_core.exceptions import DuplicateEventError, OptimisticConcurrencyError


def test_a_duplicate_event_error_names_a_few_ids_and_keeps_them_all() -> None:
    ids = [f"e-{i}" for i in range(25)]
    error = DuplicateEventError(ids, aggregate_id="a")
    assert error.event_ids == tuple(ids)
    assert isinstance(error, OptimisticConcurrencyError)
    assert error.aggregate_id == "a"
    assert str(error) == (
        "events already stored: " + ", ".join(repr(i) for i in ids[:10]) + " and 15 more"
    )
    assert str(DuplicateEventError(["x", "y"])) == "events already stored: 'x', 'y'"
