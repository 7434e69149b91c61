"""In-memory evaluation: every operator, SQL's three-valued logic, paths and errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest

from cqrs_ddd_specifications import (
    AndSpecification,
    AttributeSpecification,
    NotSpecification,
    OrSpecification,
    Specification,
    SpecificationError,
    SpecificationEvaluationError,
    TrueSpecification,
    resolve_field,
)

# (operator, operand, actual value, expected evaluate() result)
CASES: list[tuple[str, Any, Any, bool | None]] = [
    ("eq", 1, 1, True),
    ("eq", 1, 2, False),
    ("eq", "a", "A", False),
    ("eq", 1, None, None),
    ("eq", 1, 1.0, True),
    ("eq", True, 1, True),
    ("ne", 1, 2, True),
    ("ne", 1, 1, False),
    ("ne", 1, None, None),
    ("gt", 5, 6, True),
    ("gt", 5, 5, False),
    ("gt", 5, None, None),
    ("gte", 5, 5, True),
    ("gte", 5, 4, False),
    ("gte", 5, None, None),
    ("lt", "b", "a", True),
    ("lt", "b", "b", False),
    ("lt", 0, None, None),
    ("lte", 2.5, 2.5, True),
    ("lte", 2.5, 3, False),
    ("lte", 2.5, None, None),
    ("in", [1, 2], 2, True),
    ("in", [1, 2], 3, False),
    ("in", [1, None], 1, True),
    ("in", [1, None], 3, None),
    ("in", [1, 2], None, None),
    ("not_in", [1, 2], 3, True),
    ("not_in", [1, 2], 1, False),
    ("not_in", [1, None], 3, None),
    ("not_in", [1, None], 1, False),
    ("not_in", [1, 2], None, None),
    ("between", [1, 5], 1, True),
    ("between", [1, 5], 5, True),
    ("between", [1, 5], 3, True),
    ("between", [1, 5], 0, False),
    ("between", [1, 5], 6, False),
    ("between", [5, 1], 3, False),
    ("between", [1, 5], None, None),
    ("like", "ab%", "abc", True),
    ("like", "ab%", "ab", True),
    ("like", "ab%", "xab", False),
    ("like", "a_c", "abc", True),
    ("like", "a_c", "ac", False),
    ("like", "a_c", "abbc", False),
    ("like", "AB%", "abc", False),
    ("like", "%", "line1\nline2", True),
    ("like", "a%b", "a\nb", True),
    ("like", r"100\%", "100%", True),
    ("like", r"100\%", "1000", False),
    ("like", r"a\_c", "a_c", True),
    ("like", r"a\_c", "abc", False),
    ("like", "a\\\\b", "a\\b", True),
    ("like", "a.c", "abc", False),
    ("like", "ab%", None, None),
    ("ilike", "AB%", "abc", True),
    ("ilike", "ab_", "ABC", True),
    ("ilike", "ab", "abc", False),
    ("ilike", "x%", None, None),
    ("contains", "b", "abc", True),
    ("contains", "B", "abc", False),
    ("contains", "%", "50% off", True),
    ("contains", "%", "50 off", False),
    ("contains", "a_c", "abc", False),
    ("contains", "b", None, None),
    ("icontains", "B", "abc", True),
    ("icontains", "x", "abc", False),
    ("icontains", "b", None, None),
    ("startswith", "ab", "abc", True),
    ("startswith", "b", "abc", False),
    ("startswith", "_", "_x", True),
    ("startswith", "_", "ax", False),
    ("startswith", "a", None, None),
    ("endswith", "bc", "abc", True),
    ("endswith", "%", "abc", False),
    ("endswith", "%", "10%", True),
    ("endswith", "c", None, None),
    ("is_null", None, None, True),
    ("is_null", None, 0, False),
    ("is_null", None, "", False),
    ("is_not_null", None, None, False),
    ("is_not_null", None, False, True),
    ("json_has_key", "a", {"a": None}, True),
    ("json_has_key", "b", {"a": 1}, False),
    ("json_has_key", "a", {"x": {"a": 1}}, False),
    ("json_has_key", "a", ["a", "b"], True),
    ("json_has_key", "a", [["a"]], False),
    ("json_has_key", "a", "a", False),
    ("json_has_key", "a", None, None),
    ("json_contains", {"a": 1}, {"a": 1, "b": 2}, True),
    ("json_contains", {"a": 1}, {"a": 2}, False),
    ("json_contains", {"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}, True),
    ("json_contains", {"a": {"b": 1}}, {"a": {"c": 1}}, False),
    ("json_contains", {"a": None}, {"a": None}, True),
    ("json_contains", {"a": None}, {}, False),
    ("json_contains", {}, {"a": 1}, True),
    ("json_contains", {"tags": ["x"]}, {"tags": ["y", "x"]}, True),
    ("json_contains", {"tags": ["x", "z"]}, {"tags": ["y", "x"]}, False),
    ("json_contains", {"tags": "x"}, {"tags": ["x"]}, False),
    ("json_contains", [1, 1], [1], True),
    ("json_contains", [[1]], [[1, 2], 3], True),
    ("json_contains", [{"id": 2}], [{"id": 1}, {"id": 2, "n": "b"}], True),
    ("json_contains", [1], {"0": 1}, False),
    ("json_contains", {"a": 1}, [{"a": 1}], False),
    ("json_contains", "x", ["x", "y"], True),
    ("json_contains", "z", ["x", "y"], False),
    ("json_contains", "x", "x", True),
    ("json_contains", 1, 1.0, True),
    ("json_contains", True, 1, False),
    ("json_contains", {"n": 1}, {"n": True}, False),
    ("json_contains", {"n": False}, {"n": False}, True),
    ("json_contains", {"n": "1"}, {"n": 1}, False),
    ("json_contains", {"a": 1}, None, None),
]


@pytest.mark.parametrize(("operator", "operand", "actual", "expected"), CASES)
def test_operator_evaluation(
    operator: str, operand: Any, actual: Any, expected: bool | None
) -> None:
    spec = AttributeSpecification("value", operator, operand)
    assert spec.evaluate({"value": actual}) is expected
    assert spec.evaluate(SimpleNamespace(value=actual)) is expected
    assert spec.is_satisfied_by({"value": actual}) is (expected is True)


def test_every_operator_is_covered_by_the_table() -> None:
    from cqrs_ddd_specifications import build_default_registry

    assert {case[0] for case in CASES} == set(build_default_registry().names())


@dataclass
class Address:
    city: str | None


@dataclass
class Customer:
    name: str
    address: Address | None


@dataclass
class Order:
    status: str
    customer: Customer | None
    data: dict[str, Any]


ORDER = Order(
    status="pending",
    customer=Customer(name="Ann", address=Address(city="Paris")),
    data={"tags": ["a", "b"], "meta": {"source": "web"}},
)


@pytest.mark.parametrize(
    ("obj", "path", "expected"),
    [
        (ORDER, "status", "pending"),
        (ORDER, "customer.address.city", "Paris"),
        (ORDER, "data.tags", ["a", "b"]),
        (ORDER, "data.meta.source", "web"),
        (ORDER, "data.meta.missing", None),
        (ORDER, "missing", None),
        (ORDER, "customer.missing.city", None),
        (Order("x", None, {}), "customer.address.city", None),
        (Order("x", Customer("B", None), {}), "customer.address.city", None),
        ({"a": {"b": SimpleNamespace(c=3)}}, "a.b.c", 3),
        ({"a": None}, "a.b", None),
        ({}, "a", None),
    ],
)
def test_resolve_field(obj: Any, path: str, expected: Any) -> None:
    assert resolve_field(obj, path) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (AttributeSpecification("customer.address.city", "eq", "Paris"), True),
        (AttributeSpecification("customer.address.city", "ne", "Paris"), False),
        (AttributeSpecification("customer.address.zip", "eq", "75001"), None),
        (AttributeSpecification("customer.address.zip", "is_null"), True),
        (AttributeSpecification("data", "json_contains", {"tags": ["b"]}), True),
        (AttributeSpecification("data.meta", "json_has_key", "source"), True),
        (AttributeSpecification("data.meta.source", "in", ["web", "app"]), True),
        (AttributeSpecification("nope.deeper", "gt", 1), None),
    ],
)
def test_dotted_paths_on_objects(spec: Specification, expected: bool | None) -> None:
    assert spec.evaluate(ORDER) is expected


T = AttributeSpecification("v", "eq", 1)  # true on ROW
F = AttributeSpecification("v", "eq", 2)  # false on ROW
U = AttributeSpecification("missing", "eq", 1)  # unknown on ROW
ROW = {"v": 1}

KLEENE: list[tuple[Specification, bool | None]] = [
    (AndSpecification((T, T)), True),
    (AndSpecification((T, F)), False),
    (AndSpecification((F, U)), False),
    (AndSpecification((U, F)), False),
    (AndSpecification((T, U)), None),
    (AndSpecification((U, U)), None),
    (AndSpecification((T,)), True),
    (OrSpecification((F, F)), False),
    (OrSpecification((F, T)), True),
    (OrSpecification((T, U)), True),
    (OrSpecification((U, T)), True),
    (OrSpecification((F, U)), None),
    (OrSpecification((U, U)), None),
    (NotSpecification(T), False),
    (NotSpecification(F), True),
    (NotSpecification(U), None),
    (NotSpecification(AndSpecification((T, U))), None),
    (NotSpecification(OrSpecification((F, U))), None),
    (NotSpecification(AndSpecification((F, U))), True),
    (TrueSpecification(), True),
    (NotSpecification(TrueSpecification()), False),
    (OrSpecification((U, TrueSpecification())), True),
    (AndSpecification((U, TrueSpecification())), None),
]


@pytest.mark.parametrize(("spec", "expected"), KLEENE)
def test_kleene_logic(spec: Specification, expected: bool | None) -> None:
    assert spec.evaluate(ROW) is expected
    assert spec.is_satisfied_by(ROW) is (expected is True)


def test_not_equal_on_null_is_not_satisfied_as_in_sql() -> None:
    # WHERE status <> 'x' drops rows whose status is NULL; so does NOT (status = 'x').
    assert not AttributeSpecification("status", "ne", "x").is_satisfied_by({"status": None})
    assert not (~AttributeSpecification("status", "eq", "x")).is_satisfied_by({"status": None})


@pytest.mark.parametrize(
    ("operator", "operand", "actual", "types"),
    [
        ("gt", 5, "abc", "str.*int"),
        ("lt", "a", 1, "int.*str"),
        ("between", [1, 5], "3", "str.*tuple"),
        ("like", "a%", 5, "'like' needs a string value, got int"),
        ("ilike", "a%", 5, "'ilike' needs a string value"),
        ("contains", "a", ["a"], "'contains' needs a string value, got list"),
        ("icontains", "a", 1, "'icontains' needs a string value"),
        ("startswith", "a", 1, "'startswith' needs a string value"),
        ("endswith", "a", 1, "'endswith' needs a string value"),
        ("json_has_key", "a", object(), "'json_has_key' needs a JSON value"),
        ("json_contains", {"a": 1}, object(), "'json_contains' needs a JSON value"),
    ],
)
def test_incomparable_types_raise_evaluation_error(
    operator: str, operand: Any, actual: Any, types: str
) -> None:
    spec = AttributeSpecification("price", operator, operand)
    with pytest.raises(SpecificationEvaluationError, match=types) as info:
        spec.evaluate({"price": actual})
    assert info.value.field == "price"
    assert info.value.operator == operator
    assert f"cannot evaluate 'price' {operator}" in str(info.value)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, SpecificationError)


def test_aware_and_naive_datetimes_do_not_compare() -> None:
    spec = AttributeSpecification("at", "gt", datetime(2024, 1, 1))
    with pytest.raises(SpecificationEvaluationError, match=r"'at' gt.*datetime"):
        spec.evaluate({"at": datetime(2024, 1, 2, tzinfo=UTC)})


def test_evaluation_error_is_not_hidden_by_a_false_sibling() -> None:
    spec = AndSpecification(
        (AttributeSpecification("a", "eq", 1), AttributeSpecification("b", "gt", 1))
    )
    with pytest.raises(SpecificationEvaluationError, match="'b' gt"):
        spec.evaluate({"a": 2, "b": "text"})


class Status(Enum):
    PENDING = "pending"
    PAID = "paid"


AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ID = UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    ("operator", "operand", "actual", "expected"),
    [
        ("eq", "2024-05-01T12:00:00+00:00", AT, True),
        ("gt", "2024-05-01T00:00:00+00:00", AT, True),
        ("lt", "2024-05-01T00:00:00Z", AT, False),
        ("between", ["2024-01-01T00:00:00Z", "2024-12-31T00:00:00Z"], AT, True),
        ("gte", "2024-05-02", date(2024, 5, 1), False),
        ("eq", "2024-05-01", date(2024, 5, 1), True),
        ("eq", str(ID), ID, True),
        ("in", [str(ID)], ID, True),
        ("eq", "1.10", Decimal("1.1"), True),
        ("gt", "1.05", Decimal("1.1"), True),
        ("eq", "pending", Status.PENDING, True),
        ("in", ["paid", "pending"], Status.PENDING, True),
        ("eq", Status.PAID, Status.PENDING, False),
        ("eq", Status.PENDING, Status.PENDING, True),
    ],
)
def test_string_operands_are_cast_to_the_attribute_type(
    operator: str, operand: Any, actual: Any, expected: bool
) -> None:
    spec = AttributeSpecification("x", operator, operand)
    assert spec.evaluate({"x": actual}) is expected


def test_unparseable_string_against_datetime_is_an_evaluation_error() -> None:
    spec = AttributeSpecification("at", "gt", "yesterday")
    with pytest.raises(
        SpecificationEvaluationError, match="cannot compare datetime with 'yesterday'"
    ):
        spec.evaluate({"at": AT})


def test_aware_string_against_naive_datetime_is_an_evaluation_error() -> None:
    spec = AttributeSpecification("at", "gt", "2024-01-01T00:00:00+00:00")
    with pytest.raises(SpecificationEvaluationError, match="'at' gt"):
        spec.evaluate({"at": datetime(2024, 5, 1)})


def test_missing_attribute_never_raises() -> None:
    class Slotted:
        __slots__ = ("a",)

    obj = Slotted()  # "a" declared but never set
    assert AttributeSpecification("a", "eq", 1).evaluate(obj) is None
    assert AttributeSpecification("a", "is_null").evaluate(obj) is True
