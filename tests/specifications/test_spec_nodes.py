"""Specification nodes: construction, immutability, hashing and combination."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from cqrs_ddd_specifications import (
    AndSpecification,
    AttributeSpecification,
    InvalidFieldError,
    NotSpecification,
    OrSpecification,
    Specification,
    SpecificationError,
    TrueSpecification,
    validate_field,
)

cond_a = AttributeSpecification("a", "eq", 1)
cond_b = AttributeSpecification("b", "gt", 2)
cond_c = AttributeSpecification("c", "in", [3, 4])
cond_d = AttributeSpecification("d", "like", "x%")


@pytest.mark.parametrize("field", ["status", "_private", "customer.address.city", "a1.b_2.C3"])
def test_valid_fields(field: str) -> None:
    assert validate_field(field) == field
    assert AttributeSpecification(field, "eq", 1).field == field


@pytest.mark.parametrize(
    "field",
    [
        "",
        "name; DROP TABLE x",
        "a b",
        "1abc",
        "a..b",
        ".a",
        "a.",
        "a-b",
        "a.b c",
        'a"',
        "é",
        "a[0]",
    ],
)
def test_invalid_fields_are_rejected(field: str) -> None:
    with pytest.raises(InvalidFieldError, match="invalid field") as info:
        AttributeSpecification(field, "eq", 1)
    assert info.value.field == field
    assert repr(field) in str(info.value)


def test_non_string_field_is_rejected() -> None:
    with pytest.raises(InvalidFieldError, match="expected a string, got int"):
        AttributeSpecification(5, "eq", 1)  # type: ignore[arg-type]


def test_nodes_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        cond_a.value = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        AndSpecification((cond_a, cond_b)).specs = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        NotSpecification(cond_a).spec = cond_b  # type: ignore[misc]


def test_equality_and_hashing() -> None:
    assert AttributeSpecification("a", "=", 1) == cond_a
    assert hash(AttributeSpecification("a", "==", 1)) == hash(cond_a)
    assert cond_a != AttributeSpecification("a", "eq", 2)
    assert cond_a != AttributeSpecification("b", "eq", 1)
    assert cond_a != AttributeSpecification("a", "ne", 1)
    json_spec = AttributeSpecification("data", "json_contains", {"a": [1, {"b": 2}]})
    same = AttributeSpecification("data", "json_contains", {"a": [1, {"b": 2}]})
    assert json_spec == same
    assert hash(json_spec) == hash(same)
    nodes: set[Specification] = {
        cond_a,
        AndSpecification((cond_a, cond_b)),
        AndSpecification((cond_a, cond_b)),
        OrSpecification((cond_a, cond_b)),
        NotSpecification(cond_a),
        TrueSpecification(),
        TrueSpecification(),
        json_spec,
    }
    assert len(nodes) == 6


def test_and_or_accept_lists_and_store_tuples() -> None:
    spec = AndSpecification([cond_a, cond_b])  # type: ignore[arg-type]
    assert spec.specs == (cond_a, cond_b)
    assert OrSpecification([cond_a]).specs == (cond_a,)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [AndSpecification, OrSpecification])
def test_and_or_need_specifications(kind: Any) -> None:
    with pytest.raises(SpecificationError, match="needs at least one specification"):
        kind(())
    with pytest.raises(TypeError, match="takes specifications, got int"):
        kind((cond_a, 1))
    with pytest.raises(TypeError, match="takes a tuple of specifications"):
        kind(cond_a)


def test_not_needs_a_specification() -> None:
    with pytest.raises(TypeError, match="NotSpecification takes a specification, got dict"):
        NotSpecification({"field": "a"})  # type: ignore[arg-type]


def test_repr_is_readable() -> None:
    assert repr(cond_a) == "AttributeSpecification(field='a', operator='eq', value=1)"
    assert repr(NotSpecification(cond_a)) == f"NotSpecification(spec={cond_a!r})"
    assert (
        repr(AndSpecification((cond_a, cond_b)))
        == f"AndSpecification(specs=({cond_a!r}, {cond_b!r}))"
    )
    assert repr(TrueSpecification()) == "TrueSpecification()"


def test_and_flattens() -> None:
    assert cond_a & cond_b == AndSpecification((cond_a, cond_b))
    assert (cond_a & cond_b) & cond_c == AndSpecification((cond_a, cond_b, cond_c))
    assert cond_a & (cond_b & cond_c) == AndSpecification((cond_a, cond_b, cond_c))
    assert (cond_a & cond_b) & (cond_c & cond_d) == AndSpecification(
        (cond_a, cond_b, cond_c, cond_d)
    )
    assert (cond_a | cond_b) & cond_c == AndSpecification(
        (OrSpecification((cond_a, cond_b)), cond_c)
    )


def test_or_flattens() -> None:
    assert cond_a | cond_b == OrSpecification((cond_a, cond_b))
    assert (cond_a | cond_b) | cond_c == OrSpecification((cond_a, cond_b, cond_c))
    assert cond_a | (cond_b | cond_c) == OrSpecification((cond_a, cond_b, cond_c))
    assert (cond_a & cond_b) | cond_c == OrSpecification(
        (AndSpecification((cond_a, cond_b)), cond_c)
    )


def test_invert() -> None:
    assert ~cond_a == NotSpecification(cond_a)
    assert ~~cond_a == cond_a
    assert ~(cond_a & cond_b) == NotSpecification(AndSpecification((cond_a, cond_b)))


def test_true_is_absorbed() -> None:
    everything = TrueSpecification()
    assert everything & cond_a == cond_a
    assert cond_a & everything == cond_a
    assert everything | cond_a == everything
    assert cond_a | everything == everything
    assert ~everything == NotSpecification(everything)


def test_combining_with_non_specification_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = cond_a & True
    with pytest.raises(TypeError):
        _ = cond_a | "b"


def test_definition_is_the_resolved_operator() -> None:
    assert cond_a.definition.name == "eq"
    assert "=" in cond_a.definition.aliases


def test_replace_revalidates() -> None:
    assert dataclasses.replace(cond_a, value=5) == AttributeSpecification("a", "eq", 5)
    with pytest.raises(InvalidFieldError):
        dataclasses.replace(cond_a, field="a b")


def test_pickle_round_trip() -> None:
    spec = (cond_a & ~cond_b) | cond_c
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_specification_is_abstract() -> None:
    with pytest.raises(TypeError):
        Specification()  # type: ignore[abstract]
