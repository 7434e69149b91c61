"""to_dict / from_dict: the format, round trips and malformed input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from pydantic_core import to_jsonable_python

from cqrs_ddd_specifications import (
    AndSpecification,
    AttributeSpecification,
    InvalidFieldError,
    InvalidOperandError,
    MalformedSpecificationError,
    NotSpecification,
    Operator,
    OrSpecification,
    Specification,
    TrueSpecification,
    UnknownOperatorError,
    build_default_registry,
)
from cqrs_ddd_specifications.serialization import from_dict, to_dict

A = AttributeSpecification("status", "eq", "pending")
B = AttributeSpecification("total", "between", [10, 20])
C = AttributeSpecification("deleted_at", "is_null")

ROUND_TRIPS: list[Specification] = [
    A,
    B,
    C,
    AttributeSpecification("id", "in", (1, 2, None)),
    AttributeSpecification("id", "not_in", ["x"]),
    AttributeSpecification("name", "like", r"a\%%"),
    AttributeSpecification("name", "icontains", "x"),
    AttributeSpecification("data", "json_contains", {"tags": ["a"], "n": {"m": None}}),
    AttributeSpecification("data", "json_has_key", "k"),
    AttributeSpecification("at", "gte", datetime(2024, 1, 1, tzinfo=UTC)),
    AttributeSpecification("customer.address.city", "ne", "Paris"),
    AndSpecification((A, B)),
    OrSpecification((A, NotSpecification(B), C)),
    NotSpecification(AndSpecification((A, OrSpecification((B, C))))),
    AndSpecification((AndSpecification((A, B)),)),
    TrueSpecification(),
    NotSpecification(TrueSpecification()),
]


@pytest.mark.parametrize("spec", ROUND_TRIPS)
def test_round_trip(spec: Specification) -> None:
    data = spec.to_dict()
    assert Specification.from_dict(data) == spec
    assert from_dict(data) == spec
    assert to_dict(spec) == data


@pytest.mark.parametrize("spec", [s for s in ROUND_TRIPS if s is not ROUND_TRIPS[9]])
def test_round_trip_through_json_text(spec: Specification) -> None:
    assert Specification.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_format() -> None:
    spec = (A & ~B) | C | TrueSpecification().__invert__()
    assert spec.to_dict() == {
        "or": [
            {
                "and": [
                    {"field": "status", "op": "eq", "value": "pending"},
                    {"not": {"field": "total", "op": "between", "value": [10, 20]}},
                ]
            },
            {"field": "deleted_at", "op": "is_null"},
            {"not": {"all": True}},
        ]
    }
    assert TrueSpecification().to_dict() == {"all": True}


def test_tuples_become_lists() -> None:
    data = AttributeSpecification("x", "in", (1, (2, 3))).to_dict()
    assert data == {"field": "x", "op": "in", "value": [1, [2, 3]]}
    assert isinstance(data["value"][1], list)


def test_to_dict_returns_a_fresh_structure() -> None:
    spec = AttributeSpecification("data", "json_contains", {"a": [1]})
    spec.to_dict()["value"]["a"].append(2)
    assert spec.value == {"a": [1]}


def test_non_json_values_are_kept_and_encodable_with_pydantic() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    spec = AttributeSpecification("at", "gt", at) & AttributeSpecification(
        "id", "in", [UUID(int=1), Decimal("1.5")]
    )
    data = spec.to_dict()
    assert data["and"][0]["value"] is at
    text = json.dumps(to_jsonable_python(data))
    parsed = Specification.from_dict(json.loads(text))
    assert parsed == AttributeSpecification("at", "gt", "2024-01-01T00:00:00Z") & (
        AttributeSpecification("id", "in", [str(UUID(int=1)), "1.5"])
    )
    assert parsed.is_satisfied_by({"at": datetime(2024, 6, 1, tzinfo=UTC), "id": UUID(int=1)})


def test_symbols_are_accepted_and_canonicalised() -> None:
    spec = Specification.from_dict({"field": "age", "op": ">=", "value": 18})
    assert spec == AttributeSpecification("age", "gte", 18)
    assert spec.to_dict()["op"] == "gte"


def test_eq_with_null_value_reads_as_is_null() -> None:
    spec = Specification.from_dict({"field": "x", "op": "eq", "value": None})
    assert spec == AttributeSpecification("x", "is_null")
    assert Specification.from_dict({"field": "x", "op": "ne"}) == AttributeSpecification(
        "x", "is_not_null"
    )


def test_custom_registry() -> None:
    registry = build_default_registry()
    registry.register(Operator("near", evaluator=lambda a, v: abs(a - v) < 1))
    data = {
        "and": [{"field": "x", "op": "near", "value": 3}, {"field": "y", "op": "=", "value": 1}]
    }
    spec = Specification.from_dict(data, registry=registry)
    assert spec.is_satisfied_by({"x": 3.5, "y": 1})
    assert spec.to_dict()["and"][0]["op"] == "near"
    with pytest.raises(
        MalformedSpecificationError, match=r"^and\[0\]\.op: unknown operator 'near'"
    ):
        Specification.from_dict(data)


def test_subclass_from_dict_checks_the_node_type() -> None:
    assert AndSpecification.from_dict({"and": [A.to_dict()]}) == AndSpecification((A,))
    with pytest.raises(MalformedSpecificationError, match="expected a AndSpecification"):
        AndSpecification.from_dict(A.to_dict())


MALFORMED: list[tuple[Any, str]] = [
    ([], r"^<root>: expected an object \(dict\), got list"),
    ("status = 1", r"^<root>: expected an object \(dict\), got str"),
    (None, r"^<root>: expected an object \(dict\), got NoneType"),
    ({}, r"^<root>: empty object"),
    ({"where": 1}, r"^<root>: unknown key\(s\) 'where'"),
    ({"field": "a", "op": "eq", "value": 1, "extra": 2}, r"^<root>: unknown key\(s\) 'extra'"),
    ({"field": "a", "value": 1}, r"^op: missing"),
    ({"op": "eq", "value": 1}, r"^field: missing"),
    ({"field": 1, "op": "eq"}, r"^field: expected a string, got int"),
    ({"field": "a", "op": ["eq"]}, r"^op: expected a string, got list"),
    ({"field": "a b", "op": "eq", "value": 1}, r"^field: invalid field 'a b'"),
    ({"field": "a", "op": "approx", "value": 1}, r"^op: unknown operator 'approx'; known"),
    ({"field": "a", "op": "gt"}, r"^value: invalid value for operator 'gt' on field 'a'"),
    ({"field": "a", "op": "between", "value": [1]}, r"^value: .*exactly 2 items"),
    ({"field": "a", "op": "is_null", "value": True}, r"^value: .*no value"),
    ({"and": []}, r"^and: expected a non-empty list"),
    ({"or": {"field": "a"}}, r"^or: expected a list of specifications, got dict"),
    ({"and": "x"}, r"^and: expected a list of specifications, got str"),
    ({"and": [{"field": "a", "op": "eq", "value": 1}], "or": []}, r"^<root>: a 'and' node"),
    ({"not": {"field": "a", "op": "eq"}, "x": 1}, r"^<root>: a 'not' node takes no other key"),
    ({"all": 1}, r"^all: expected true, got 1"),
    ({"all": False}, r"^all: expected true, got False"),
    ({"all": True, "and": []}, r"^<root>: a 'and' node takes no other key, got 'all'"),
    ({"not": []}, r"^not: expected an object"),
    (
        {"and": [{"field": "a", "op": "eq", "value": 1}, {"field": "b", "op": "??"}]},
        r"^and\[1\]\.op: unknown operator '\?\?'",
    ),
    (
        {"or": [{"all": True}, {"not": {"and": [{"field": "x y", "op": "eq"}]}}]},
        r"^or\[1\]\.not\.and\[0\]\.field: invalid field 'x y'",
    ),
    ({"and": [1]}, r"^and\[0\]: expected an object \(dict\), got int"),
    ({"not": {"field": "a", "op": "in", "value": []}}, r"^not\.value: .*non-empty list"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED)
def test_malformed(data: Any, message: str) -> None:
    with pytest.raises(MalformedSpecificationError, match=message):
        Specification.from_dict(data)


@pytest.mark.parametrize(
    ("data", "path", "cause"),
    [
        ({"field": "a;", "op": "eq", "value": 1}, "field", InvalidFieldError),
        ({"and": [{"field": "a", "op": "~"}]}, "and[0].op", UnknownOperatorError),
        ({"not": {"field": "a", "op": "like", "value": 1}}, "not.value", InvalidOperandError),
        ({"and": [{"all": 2}]}, "and[0].all", type(None)),
    ],
)
def test_malformed_has_path_and_specific_cause(data: Any, path: str, cause: type) -> None:
    with pytest.raises(MalformedSpecificationError) as info:
        Specification.from_dict(data)
    assert info.value.path == path
    assert type(info.value.__cause__) is cause


def test_too_deep_nesting_is_rejected() -> None:
    data: dict[str, Any] = {"field": "a", "op": "eq", "value": 1}
    for _ in range(150):
        data = {"not": data}
    with pytest.raises(MalformedSpecificationError, match="nested more than 100 levels"):
        Specification.from_dict(data)


def test_to_dict_function_checks_type() -> None:
    with pytest.raises(TypeError, match="expected a Specification, got dict"):
        to_dict({"all": True})  # type: ignore[arg-type]
