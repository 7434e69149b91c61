"""QueryOptions: immutability, ordering, pagination and in-memory application."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest

from cqrs_ddd_specifications import (
    AttributeSpecification,
    InvalidFieldError,
    InvalidQueryOptionsError,
    MalformedSpecificationError,
    Operator,
    OrderBy,
    QueryOptions,
    SpecificationBuilder,
    SpecificationEvaluationError,
    build_default_registry,
)

PENDING = AttributeSpecification("status", "eq", "pending")


def test_defaults() -> None:
    options = QueryOptions()
    assert options.specification is None
    assert options.ordering == ()
    assert options.limit is None
    assert options.offset == 0
    assert options.registry is None


def test_the_readme_example() -> None:
    registry = build_default_registry()
    spec = SpecificationBuilder().where("status", "eq", "pending").build()
    options = (
        QueryOptions()
        .with_specification(spec, registry=registry)
        .with_ordering("-created_at")
        .with_pagination(limit=20, offset=0)
    )
    assert options.specification == spec
    assert options.registry is registry
    assert options.ordering == (OrderBy("created_at", descending=True),)
    assert (options.limit, options.offset) == (20, 0)


def test_immutable() -> None:
    options = QueryOptions()
    derived = [
        options.with_specification(PENDING),
        options.with_ordering("name"),
        options.with_pagination(limit=5, offset=1),
    ]
    assert all(d is not options for d in derived)
    assert options == QueryOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.limit = 3  # type: ignore[misc]


def test_with_methods_keep_the_other_settings() -> None:
    options = (
        QueryOptions()
        .with_pagination(limit=3, offset=6)
        .with_ordering("name")
        .with_specification(PENDING)
    )
    assert (options.limit, options.offset) == (3, 6)
    assert options.ordering == (OrderBy("name"),)
    assert options.specification == PENDING


def test_with_specification_replaces_and_none_clears() -> None:
    other = AttributeSpecification("total", "gt", 1)
    options = QueryOptions().with_specification(PENDING).with_specification(other)
    assert options.specification == other
    assert options.with_specification(None).specification is None


def test_with_specification_parses_dicts_with_the_registry() -> None:
    registry = build_default_registry()
    registry.register(Operator("odd", evaluator=lambda actual, _: actual % 2 == 1))
    options = QueryOptions().with_specification({"field": "n", "op": "odd"}, registry=registry)
    assert options.registry is registry
    assert options.specification == AttributeSpecification("n", "odd", registry=registry)
    # The kept registry is used for later dicts too.
    again = options.with_specification({"field": "m", "op": "odd"})
    assert again.registry is registry
    assert again.specification is not None
    assert again.specification.is_satisfied_by({"m": 3})
    with pytest.raises(MalformedSpecificationError, match=r"^op: unknown operator 'odd'"):
        QueryOptions().with_specification({"field": "n", "op": "odd"})


def test_with_specification_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="expected a Specification, a dict or None, got str"):
        QueryOptions().with_specification("status = 'x'")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="specification must be a Specification or None, got int"):
        QueryOptions(specification=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="registry must be an OperatorRegistry, got dict"):
        QueryOptions().with_specification(PENDING, registry={})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (("-created_at",), [("created_at", True)]),
        (("+name",), [("name", False)]),
        (("name",), [("name", False)]),
        (("-a", "b", "+c.d"), [("a", True), ("b", False), ("c.d", False)]),
        ((["-a", "b"],), [("a", True), ("b", False)]),
        ((("a", "-b"),), [("a", False), ("b", True)]),
        ((OrderBy("x", descending=True), "y"), [("x", True), ("y", False)]),
        ((), []),
    ],
)
def test_with_ordering(fields: tuple[Any, ...], expected: list[tuple[str, bool]]) -> None:
    options = QueryOptions().with_ordering(*fields)
    assert [(o.field, o.descending) for o in options.ordering] == expected
    assert isinstance(options.ordering, tuple)


def test_with_ordering_replaces() -> None:
    options = QueryOptions().with_ordering("a").with_ordering("-b")
    assert options.ordering == (OrderBy("b", descending=True),)
    assert options.with_ordering().ordering == ()


@pytest.mark.parametrize("bad", ["", "-", "+", "--a", "a b", "-name; DROP TABLE x", "a.", "+-a"])
def test_with_ordering_validates_fields(bad: str) -> None:
    with pytest.raises(InvalidFieldError, match="invalid field"):
        QueryOptions().with_ordering(bad)


def test_with_ordering_rejects_non_strings() -> None:
    with pytest.raises(InvalidQueryOptionsError, match="must be a string such as '-created_at'"):
        QueryOptions().with_ordering(5)  # type: ignore[arg-type]


def test_order_by() -> None:
    assert OrderBy.parse("-a") == OrderBy("a", True)
    assert str(OrderBy("a", True)) == "-a"
    assert str(OrderBy.parse("+a")) == "a"
    with pytest.raises(TypeError, match="descending must be a bool, got str"):
        OrderBy("a", "yes")  # type: ignore[arg-type]


def test_constructor_parses_and_validates() -> None:
    options = QueryOptions(ordering=["-a"], limit=2, offset=1)  # type: ignore[arg-type]
    assert options.ordering == (OrderBy("a", True),)
    with pytest.raises(TypeError, match="ordering must be a sequence of OrderBy or str, got str"):
        QueryOptions(ordering="-a")  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryOptionsError, match="limit must be >= 1, got 0"):
        QueryOptions(limit=0)


@pytest.mark.parametrize(
    ("limit", "offset", "message"),
    [
        (0, 0, "limit must be >= 1, got 0"),
        (-1, 0, "limit must be >= 1, got -1"),
        (10, -1, "offset must be >= 0, got -1"),
        (1.5, 0, "limit must be an int, got float"),
        ("10", 0, "limit must be an int, got str"),
        (True, 0, "limit must be an int, got bool"),
        (10, None, "offset must be an int, got NoneType"),
        (10, 2.0, "offset must be an int, got float"),
        (10, False, "offset must be an int, got bool"),
    ],
)
def test_with_pagination_validates(limit: Any, offset: Any, message: str) -> None:
    with pytest.raises(InvalidQueryOptionsError, match=message):
        QueryOptions().with_pagination(limit=limit, offset=offset)


def test_with_pagination() -> None:
    options = QueryOptions().with_pagination(limit=1)
    assert (options.limit, options.offset) == (1, 0)
    options = options.with_pagination(offset=5)
    assert (options.limit, options.offset) == (None, 5)
    assert QueryOptions().with_pagination(10, 20).offset == 20


def test_equality_ignores_registry() -> None:
    first = QueryOptions().with_specification(PENDING, registry=build_default_registry())
    assert first == QueryOptions(specification=PENDING)
    assert hash(first) == hash(QueryOptions(specification=PENDING))


@dataclass
class Row:
    id: int
    status: str
    score: int | None
    name: str


ROWS = [
    Row(1, "pending", 5, "b"),
    Row(2, "paid", None, "a"),
    Row(3, "pending", 2, "c"),
    Row(4, "pending", None, "d"),
    Row(5, "pending", 5, "a"),
    Row(6, "paid", 9, "e"),
]


def ids(rows: list[Row]) -> list[int]:
    return [row.id for row in rows]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (QueryOptions(), [1, 2, 3, 4, 5, 6]),
        (QueryOptions().with_specification(PENDING), [1, 3, 4, 5]),
        (QueryOptions().with_ordering("score"), [3, 1, 5, 6, 2, 4]),
        (QueryOptions().with_ordering("-score"), [2, 4, 6, 1, 5, 3]),
        (QueryOptions().with_ordering("-score", "name"), [2, 4, 6, 5, 1, 3]),
        (QueryOptions().with_ordering("score", "-name"), [3, 1, 5, 6, 4, 2]),
        (QueryOptions().with_ordering("status", "-id"), [6, 2, 5, 4, 3, 1]),
        (QueryOptions().with_pagination(limit=2), [1, 2]),
        (QueryOptions().with_pagination(limit=2, offset=5), [6]),
        (QueryOptions().with_pagination(offset=4), [5, 6]),
        (QueryOptions().with_pagination(offset=10), []),
        (
            QueryOptions()
            .with_specification(PENDING)
            .with_ordering("-score", "id")
            .with_pagination(limit=2, offset=1),
            [1, 5],
        ),
        (
            QueryOptions().with_specification(AttributeSpecification("score", "lt", 6)),
            [1, 3, 5],
        ),
    ],
)
def test_apply(options: QueryOptions, expected: list[int]) -> None:
    assert ids(options.apply(ROWS)) == expected


def test_apply_accepts_any_iterable_and_dicts() -> None:
    rows = ({"n": n, "g": {"k": -n}} for n in range(5))
    options = QueryOptions().with_ordering("g.k").with_pagination(limit=3)
    assert [row["n"] for row in options.apply(rows)] == [4, 3, 2]


def test_apply_sort_is_stable() -> None:
    options = QueryOptions().with_ordering("-status")
    assert ids(options.apply(ROWS)) == [1, 3, 4, 5, 2, 6]


def test_apply_with_incomparable_values_raises() -> None:
    rows = [{"v": 1}, {"v": "a"}]
    with pytest.raises(SpecificationEvaluationError, match="cannot sort by 'v'") as info:
        QueryOptions().with_ordering("v").apply(rows)
    assert info.value.field == "v"
    assert info.value.operator is None


def test_of_normalises_what_search_accepts() -> None:
    from cqrs_ddd_specifications import AttributeSpecification, QueryOptions

    spec = AttributeSpecification("status", "eq", "open")
    options = QueryOptions().with_pagination(limit=5)
    assert QueryOptions.of(None) == QueryOptions()
    assert QueryOptions.of(spec).specification == spec
    assert QueryOptions.of(options) is options
    with pytest.raises(TypeError, match="got dict"):
        QueryOptions.of({"field": "status"})  # type: ignore[arg-type]
