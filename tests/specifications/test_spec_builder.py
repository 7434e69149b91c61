"""SpecificationBuilder: every method, precedence, grouping and immutability."""

from __future__ import annotations

import pytest

from cqrs_ddd_specifications import (
    AndSpecification,
    AttributeSpecification,
    InvalidOperandError,
    NotSpecification,
    Operator,
    OrSpecification,
    SpecificationBuilder,
    TrueSpecification,
    UnknownOperatorError,
    build_default_registry,
)

A = AttributeSpecification("a", "eq", 1)
B = AttributeSpecification("b", "gt", 2)
C = AttributeSpecification("c", "lt", 3)
D = AttributeSpecification("d", "ne", 4)


def test_the_readme_example() -> None:
    builder = SpecificationBuilder()
    spec = builder.where("status", "eq", "pending").build()
    assert spec == AttributeSpecification("status", "eq", "pending")
    assert spec.is_satisfied_by({"status": "pending"})
    assert not spec.is_satisfied_by({"status": "paid"})


def test_empty_builder_matches_everything() -> None:
    spec = SpecificationBuilder().build()
    assert spec == TrueSpecification()
    assert spec.is_satisfied_by(object())


def test_single_condition_is_not_wrapped() -> None:
    assert SpecificationBuilder().where("a", "=", 1).build() == A


def test_where_ands() -> None:
    spec = SpecificationBuilder().where("a", "eq", 1).where("b", ">", 2).where("c", "<", 3).build()
    assert spec == AndSpecification((A, B, C))


def test_or_where_ors() -> None:
    spec = SpecificationBuilder().where("a", "eq", 1).or_where("b", "gt", 2).build()
    assert spec == OrSpecification((A, B))


def test_or_where_on_empty_builder_is_the_condition() -> None:
    assert SpecificationBuilder().or_where("a", "eq", 1).build() == A


def test_where_not() -> None:
    assert SpecificationBuilder().where_not("a", "eq", 1).build() == NotSpecification(A)
    spec = SpecificationBuilder().where("b", "gt", 2).where_not("a", "eq", 1).build()
    assert spec == AndSpecification((B, NotSpecification(A)))


def test_left_to_right_precedence() -> None:
    builder = SpecificationBuilder()
    a_and_b_or_c = builder.where("a", "eq", 1).where("b", "gt", 2).or_where("c", "lt", 3)
    assert a_and_b_or_c.build() == OrSpecification((AndSpecification((A, B)), C))
    a_or_b_and_c = builder.where("a", "eq", 1).or_where("b", "gt", 2).where("c", "lt", 3)
    assert a_or_b_and_c.build() == AndSpecification((OrSpecification((A, B)), C))


def test_left_to_right_precedence_changes_results() -> None:
    # a=1 false, b>2 false, c<3 true: (a AND b) OR c is true, a AND (b OR c) is false.
    row = {"a": 0, "b": 0, "c": 0}
    left_to_right = SpecificationBuilder().where("a", "eq", 1).where("b", "gt", 2)
    assert left_to_right.or_where("c", "lt", 3).build().is_satisfied_by(row)
    grouped = (
        SpecificationBuilder()
        .where("a", "eq", 1)
        .and_group(lambda g: g.where("b", "gt", 2).or_where("c", "lt", 3))
    )
    assert not grouped.build().is_satisfied_by(row)


def test_and_group() -> None:
    spec = (
        SpecificationBuilder()
        .where("a", "eq", 1)
        .and_group(lambda g: g.where("b", "gt", 2).or_where("c", "lt", 3))
        .build()
    )
    assert spec == AndSpecification((A, OrSpecification((B, C))))


def test_or_group() -> None:
    spec = (
        SpecificationBuilder()
        .where("a", "eq", 1)
        .where("d", "ne", 4)
        .or_group(lambda g: g.where("b", "gt", 2).where("c", "lt", 3))
        .build()
    )
    assert spec == OrSpecification((AndSpecification((A, D)), AndSpecification((B, C))))


def test_nested_groups() -> None:
    spec = (
        SpecificationBuilder()
        .where("a", "eq", 1)
        .and_group(
            lambda g: g.where("b", "gt", 2).or_group(
                lambda h: h.where("c", "lt", 3).where("d", "ne", 4)
            )
        )
        .build()
    )
    assert spec == AndSpecification((A, OrSpecification((B, AndSpecification((C, D))))))


def test_group_on_empty_builder_is_the_group() -> None:
    spec = SpecificationBuilder().and_group(lambda g: g.where("a", "eq", 1).or_where("b", ">", 2))
    assert spec.build() == OrSpecification((A, B))


def test_empty_groups_add_nothing() -> None:
    base = SpecificationBuilder().where("a", "eq", 1)
    assert base.and_group(lambda g: g).build() == A
    assert base.or_group(lambda g: g).build() == A
    assert SpecificationBuilder().or_group(lambda g: g).build() == TrueSpecification()


def test_group_function_must_return_a_builder() -> None:
    with pytest.raises(TypeError, match=r"must return the SpecificationBuilder.*got NoneType"):
        SpecificationBuilder().and_group(lambda g: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="got AttributeSpecification"):
        SpecificationBuilder().or_group(lambda g: A)  # type: ignore[arg-type,return-value]


def test_and_spec_add_and_or_spec() -> None:
    base = SpecificationBuilder().where("a", "eq", 1)
    assert base.and_spec(B | C).build() == AndSpecification((A, OrSpecification((B, C))))
    assert base.add(B).build() == AndSpecification((A, B))
    assert base.or_spec(B & C).build() == OrSpecification((A, AndSpecification((B, C))))
    assert SpecificationBuilder().add(B).build() == B
    assert SpecificationBuilder().or_spec(B).build() == B
    assert base.add(TrueSpecification()).build() == A


def test_spec_methods_reject_non_specifications() -> None:
    with pytest.raises(TypeError, match="expected a Specification, got dict"):
        SpecificationBuilder().and_spec({"field": "a"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a Specification, got str"):
        SpecificationBuilder().or_spec("a = 1")  # type: ignore[arg-type]


def test_builder_is_immutable() -> None:
    empty = SpecificationBuilder()
    with_a = empty.where("a", "eq", 1)
    with_a_b = with_a.where("b", "gt", 2)
    with_a_or_c = with_a.or_where("c", "lt", 3)
    assert empty.build() == TrueSpecification()
    assert with_a.build() == A
    assert with_a_b.build() == AndSpecification((A, B))
    assert with_a_or_c.build() == OrSpecification((A, C))
    for derived in (with_a, with_a_b, with_a_or_c, empty.add(A), empty.where_not("a", "eq", 1)):
        assert derived is not empty
    assert empty.and_group(lambda g: g.where("a", "eq", 1)) is not empty


def test_unknown_operator_fails_at_where() -> None:
    builder = SpecificationBuilder()
    with pytest.raises(UnknownOperatorError, match=r"'approx'; known operators: between, .*eq"):
        builder.where("a", "approx", 1)
    with pytest.raises(UnknownOperatorError, match="'~'"):
        builder.or_where("a", "~", 1)
    with pytest.raises(UnknownOperatorError, match="'nope'"):
        builder.where_not("a", "nope", 1)


def test_invalid_operand_fails_at_where() -> None:
    with pytest.raises(InvalidOperandError, match=r"'between' on field 'age'.*exactly 2 items"):
        SpecificationBuilder().where("age", "between", [1])


def test_value_defaults_to_none() -> None:
    spec = SpecificationBuilder().where("deleted_at", "is_null").build()
    assert spec == AttributeSpecification("deleted_at", "is_null")
    assert SpecificationBuilder().where("deleted_at", "eq").build() == spec


def test_custom_registry_is_used_and_passed_to_groups() -> None:
    registry = build_default_registry()
    registry.register(Operator("even", evaluator=lambda actual, _: actual % 2 == 0))
    builder = SpecificationBuilder(registry)
    assert builder.registry is registry
    spec = builder.where("n", "gt", 0).and_group(lambda g: g.where("n", "even")).build()
    assert spec.is_satisfied_by({"n": 4})
    assert not spec.is_satisfied_by({"n": 3})
    with pytest.raises(UnknownOperatorError, match="'even'"):
        SpecificationBuilder().where("n", "even")


def test_registry_type_is_checked() -> None:
    with pytest.raises(TypeError, match="registry must be an OperatorRegistry, got dict"):
        SpecificationBuilder({})  # type: ignore[arg-type]


def test_repr() -> None:
    assert repr(SpecificationBuilder()) == "SpecificationBuilder(None)"
    assert repr(SpecificationBuilder().where("a", "eq", 1)) == f"SpecificationBuilder({A!r})"
