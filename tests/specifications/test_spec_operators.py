"""Operators and the operator registry: names, aliases, operand validation."""

from __future__ import annotations

from typing import Any

import pytest

from cqrs_ddd_specifications import (
    AttributeSpecification,
    InvalidOperandError,
    Operator,
    OperatorRegistry,
    SpecificationError,
    UnknownOperatorError,
    build_default_registry,
    like_to_regex,
)

CANONICAL = [
    "between",
    "contains",
    "endswith",
    "eq",
    "gt",
    "gte",
    "icontains",
    "ilike",
    "in",
    "is_not_null",
    "is_null",
    "json_contains",
    "json_has_key",
    "like",
    "lt",
    "lte",
    "ne",
    "not_in",
    "startswith",
]

SYMBOLS = [
    ("=", "eq"),
    ("==", "eq"),
    ("!=", "ne"),
    ("<>", "ne"),
    (">", "gt"),
    (">=", "gte"),
    ("<", "lt"),
    ("<=", "lte"),
]

# A valid operand for every built-in operator, and what the node stores.
VALID_OPERANDS: list[tuple[str, Any, Any]] = [
    ("eq", 1, 1),
    ("ne", "x", "x"),
    ("gt", 1, 1),
    ("gte", 1.5, 1.5),
    ("lt", "m", "m"),
    ("lte", 0, 0),
    ("in", [1, 2], (1, 2)),
    ("in", (None, 1), (None, 1)),
    ("in", {3}, (3,)),
    ("not_in", ["a"], ("a",)),
    ("between", [1, 5], (1, 5)),
    ("between", (1, 5), (1, 5)),
    ("like", "a%_b", "a%_b"),
    ("ilike", r"100\%", r"100\%"),
    ("contains", "x", "x"),
    ("icontains", "X", "X"),
    ("startswith", "%", "%"),
    ("endswith", "_", "_"),
    ("is_null", None, None),
    ("is_not_null", None, None),
    ("json_has_key", "k", "k"),
    ("json_contains", {"a": (1, {"b": None})}, {"a": [1, {"b": None}]}),
    ("json_contains", [1, "x"], [1, "x"]),
    ("json_contains", "x", "x"),
]

INVALID_OPERANDS: list[tuple[str, Any, str]] = [
    ("eq", [1, 2], "single value"),
    ("ne", {"a": 1}, "single value"),
    ("gt", None, "not None"),
    ("gte", None, "not None"),
    ("lt", None, "not None"),
    ("lte", [1], "single value"),
    ("in", [], "non-empty list"),
    ("in", "abc", "non-empty list"),
    ("in", 5, "non-empty list"),
    ("in", None, "non-empty list"),
    ("not_in", {"a": 1}, "non-empty list"),
    ("between", [1], "exactly 2 items"),
    ("between", [1, 2, 3], "exactly 2 items"),
    ("between", 1, "exactly 2 items"),
    ("between", {1, 2}, "exactly 2 items"),
    ("between", [None, 2], "neither of them None"),
    ("between", [[1], 2], "single value"),
    ("like", 5, "a string"),
    ("like", None, "a string"),
    ("like", "abc\\", "does not end with the escape"),
    ("ilike", ["a"], "a string"),
    ("contains", 1, "a string"),
    ("icontains", None, "a string"),
    ("startswith", b"x", "a string"),
    ("endswith", 3.0, "a string"),
    ("is_null", True, "no value"),
    ("is_not_null", 0, "no value"),
    ("json_has_key", 1, "a string"),
    ("json_has_key", None, "a string"),
    ("json_contains", None, "other than None"),
    ("json_contains", {1: "a"}, "keys must be strings"),
    ("json_contains", {"a": object()}, "a JSON value"),
    ("json_contains", {"a": [float("nan")]}, "no NaN or infinity"),
    ("json_contains", float("-inf"), "no NaN or infinity"),
]


def test_default_registry_has_every_operator() -> None:
    assert build_default_registry().names() == tuple(CANONICAL)


def test_build_default_registry_returns_a_fresh_registry() -> None:
    first, second = build_default_registry(), build_default_registry()
    assert first is not second
    first.register(Operator("custom", evaluator=lambda actual, operand: True))
    assert "custom" in first
    assert "custom" not in second


@pytest.mark.parametrize("name", CANONICAL)
def test_get_by_canonical_name(name: str) -> None:
    registry = build_default_registry()
    assert registry.get(name).name == name
    assert name in registry


@pytest.mark.parametrize(("symbol", "name"), SYMBOLS)
def test_get_by_symbol(symbol: str, name: str) -> None:
    registry = build_default_registry()
    assert registry.get(symbol).name == name
    assert symbol in registry


@pytest.mark.parametrize(
    ("spelling", "name"), [("EQ", "eq"), ("Not_In", "not_in"), ("LIKE", "like")]
)
def test_names_are_case_insensitive(spelling: str, name: str) -> None:
    assert build_default_registry().get(spelling).name == name


@pytest.mark.parametrize("name", CANONICAL)
def test_node_stores_canonical_name(name: str) -> None:
    operand = next(value for op, value, _ in VALID_OPERANDS if op == name)
    assert AttributeSpecification("f", name, operand).operator == name


@pytest.mark.parametrize(("symbol", "name"), SYMBOLS)
def test_node_resolves_symbol_to_canonical_name(symbol: str, name: str) -> None:
    spec = AttributeSpecification("f", symbol, 3)
    assert spec.operator == name
    assert spec == AttributeSpecification("f", name, 3)


def test_unknown_operator_names_it_and_lists_known_ones() -> None:
    registry = build_default_registry()
    with pytest.raises(
        UnknownOperatorError, match=r"unknown operator 'approx'.*between.*startswith"
    ):
        registry.get("approx")
    with pytest.raises(UnknownOperatorError) as info:
        registry.get("~=")
    assert info.value.operator == "~="
    assert info.value.known == tuple(CANONICAL)
    assert isinstance(info.value, SpecificationError)
    assert isinstance(info.value, ValueError)


def test_non_string_operator_is_unknown() -> None:
    registry = build_default_registry()
    with pytest.raises(UnknownOperatorError, match="unknown operator 3"):
        registry.get(3)  # type: ignore[arg-type]
    assert 3 not in registry


def test_unknown_operator_in_node() -> None:
    with pytest.raises(UnknownOperatorError, match="'approx'"):
        AttributeSpecification("f", "approx", 1)


def test_registry_iteration_and_length() -> None:
    registry = build_default_registry()
    assert len(registry) == len(CANONICAL)
    assert sorted(op.name for op in registry) == CANONICAL
    assert "eq" in repr(registry)


@pytest.mark.parametrize(("name", "operand", "stored"), VALID_OPERANDS)
def test_valid_operand_is_normalised(name: str, operand: Any, stored: Any) -> None:
    spec = AttributeSpecification("field", name, operand)
    assert spec.value == stored
    assert type(spec.value) is type(stored)


@pytest.mark.parametrize(("name", "operand", "expected"), INVALID_OPERANDS)
def test_invalid_operand_names_operator_field_and_expectation(
    name: str, operand: Any, expected: str
) -> None:
    with pytest.raises(InvalidOperandError, match=expected) as info:
        AttributeSpecification("price", name, operand)
    error = info.value
    assert error.operator == name
    assert error.field == "price"
    assert error.value == operand or error.value is operand
    assert f"operator {name!r} on field 'price'" in str(error)
    assert f"got {operand!r}" in str(error)


def test_omitted_value_for_comparison_is_rejected() -> None:
    with pytest.raises(InvalidOperandError, match=r"'gt' on field 'age'.*not None"):
        AttributeSpecification("age", "gt")


@pytest.mark.parametrize(
    ("operator", "normalised"), [("eq", "is_null"), ("=", "is_null"), ("ne", "is_not_null")]
)
def test_eq_and_ne_with_none_become_null_tests(operator: str, normalised: str) -> None:
    spec = AttributeSpecification("deleted_at", operator, None)
    assert spec.operator == normalised
    assert spec.value is None
    assert spec == AttributeSpecification("deleted_at", normalised)


def test_json_contains_operand_is_copied() -> None:
    operand: dict[str, Any] = {"tags": ["a"]}
    spec = AttributeSpecification("data", "json_contains", operand)
    operand["tags"].append("b")
    assert spec.value == {"tags": ["a"]}


def test_register_custom_operator_and_use_it() -> None:
    registry = build_default_registry()
    divisible = Operator(
        "divisible_by",
        aliases=("%%",),
        evaluator=lambda actual, operand: actual % operand == 0,
        validator=lambda operand: int(operand),
    )
    registry.register(divisible)
    spec = AttributeSpecification("n", "%%", "3", registry=registry)
    assert spec.operator == "divisible_by"
    assert spec.value == 3
    assert spec.definition is divisible
    assert spec.is_satisfied_by({"n": 9})
    assert not spec.is_satisfied_by({"n": 10})
    assert spec.evaluate({"n": None}) is None
    with pytest.raises(UnknownOperatorError):
        AttributeSpecification("n", "divisible_by", 3)  # not in the default registry


def test_custom_validator_errors_become_invalid_operand() -> None:
    registry = build_default_registry()
    registry.register(
        Operator("positive", evaluator=lambda a, v: a > v, validator=lambda v: int(v))
    )
    with pytest.raises(InvalidOperandError, match=r"'positive' on field 'n'.*invalid literal"):
        AttributeSpecification("n", "positive", "abc", registry=registry)


@pytest.mark.parametrize("taken", ["eq", "==", "EQ"])
def test_register_rejects_taken_names(taken: str) -> None:
    registry = build_default_registry()
    clash = Operator("approx", aliases=(taken,), evaluator=lambda a, v: True)
    with pytest.raises(SpecificationError, match=f"{taken.lower()!r} already names operator 'eq'"):
        registry.register(clash)
    assert "approx" not in registry


def test_register_rejects_non_operator() -> None:
    with pytest.raises(TypeError, match="expected an Operator, got str"):
        OperatorRegistry().register("eq")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "Eq", "1st", "not in", "="])
def test_operator_name_must_be_lower_case_identifier(name: str) -> None:
    with pytest.raises(ValueError, match="lower-case identifier"):
        Operator(name, evaluator=lambda a, v: True)


@pytest.mark.parametrize("alias", ["", " =", 5])
def test_operator_alias_must_be_non_blank_string(alias: Any) -> None:
    with pytest.raises(ValueError, match="alias must be a non-blank string"):
        Operator("approx", aliases=(alias,), evaluator=lambda a, v: True)


def test_registry_type_is_checked_by_node() -> None:
    with pytest.raises(TypeError, match="registry must be an OperatorRegistry, got dict"):
        AttributeSpecification("f", "eq", 1, registry={})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "regex"),
    [
        ("abc", "abc"),
        ("a%", "a.*"),
        ("_b", ".b"),
        (r"100\%", "100%"),
        (r"a\_b", "a_b"),
        ("a\\\\b", r"a\\b"),
        ("a.b*", r"a\.b\*"),
    ],
)
def test_like_to_regex(pattern: str, regex: str) -> None:
    assert like_to_regex(pattern).pattern == regex


def test_like_to_regex_rejects_trailing_escape() -> None:
    with pytest.raises(ValueError, match="does not end with the escape"):
        like_to_regex("abc\\")
