"""``SpecificationBuilder``: a fluent, immutable way to build a specification."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .operators import OperatorRegistry
from .specification import AttributeSpecification, Specification, TrueSpecification

__all__ = ["SpecificationBuilder"]


class SpecificationBuilder:
    """Build a specification condition by condition; every method returns a new builder.

    Precedence: conditions combine strictly left to right, in the order written, with
    no priority of AND over OR. ``where(a).where(b).or_where(c)`` is ``(a AND b) OR c``
    and ``where(a).or_where(b).where(c)`` is ``(a OR b) AND c``. Use ``and_group`` /
    ``or_group`` for explicit parentheses: ``where(a).and_group(lambda g:
    g.where(b).or_where(c))`` is ``a AND (b OR c)``.

    Operators are resolved through ``registry`` (the default operators when ``None``),
    so an unknown operator or a bad operand fails at the ``where`` call.

    Example::

        spec = SpecificationBuilder().where("status", "eq", "pending").build()
    """

    __slots__ = ("_registry", "_spec")

    def __init__(self, registry: OperatorRegistry | None = None) -> None:
        if registry is not None and not isinstance(registry, OperatorRegistry):
            raise TypeError(f"registry must be an OperatorRegistry, got {type(registry).__name__}")
        self._registry = registry
        self._spec: Specification | None = None

    @property
    def registry(self) -> OperatorRegistry | None:
        """The registry operators are resolved with (``None``: the default operators)."""
        return self._registry

    def where(self, field: str, operator: str, value: Any = None) -> SpecificationBuilder:
        """AND the condition ``field <operator> value`` with what is there."""
        return self._and(self._condition(field, operator, value))

    def or_where(self, field: str, operator: str, value: Any = None) -> SpecificationBuilder:
        """OR the condition ``field <operator> value`` with what is there."""
        return self._or(self._condition(field, operator, value))

    def where_not(self, field: str, operator: str, value: Any = None) -> SpecificationBuilder:
        """AND the negated condition ``NOT (field <operator> value)`` with what is there."""
        return self._and(~self._condition(field, operator, value))

    def and_group(
        self, build: Callable[[SpecificationBuilder], SpecificationBuilder]
    ) -> SpecificationBuilder:
        """AND a parenthesised group; ``build`` gets a fresh builder and returns it filled.

        A group left empty adds nothing.
        """
        group = self._group(build)
        return self if group is None else self._and(group)

    def or_group(
        self, build: Callable[[SpecificationBuilder], SpecificationBuilder]
    ) -> SpecificationBuilder:
        """OR a parenthesised group; ``build`` gets a fresh builder and returns it filled.

        A group left empty adds nothing.
        """
        group = self._group(build)
        return self if group is None else self._or(group)

    def and_spec(self, spec: Specification) -> SpecificationBuilder:
        """AND an existing specification with what is there."""
        return self._and(self._check(spec))

    add = and_spec

    def or_spec(self, spec: Specification) -> SpecificationBuilder:
        """OR an existing specification with what is there."""
        return self._or(self._check(spec))

    def build(self) -> Specification:
        """Return the specification; ``TrueSpecification()`` when nothing was added."""
        return TrueSpecification() if self._spec is None else self._spec

    def __repr__(self) -> str:
        return f"SpecificationBuilder({self._spec!r})"

    def _condition(self, field: str, operator: str, value: Any) -> Specification:
        return AttributeSpecification(field, operator, value, registry=self._registry)

    def _with(self, spec: Specification) -> SpecificationBuilder:
        builder = SpecificationBuilder(self._registry)
        builder._spec = spec
        return builder

    def _and(self, spec: Specification) -> SpecificationBuilder:
        return self._with(spec if self._spec is None else self._spec & spec)

    def _or(self, spec: Specification) -> SpecificationBuilder:
        return self._with(spec if self._spec is None else self._spec | spec)

    def _group(
        self, build: Callable[[SpecificationBuilder], SpecificationBuilder]
    ) -> Specification | None:
        builder = build(SpecificationBuilder(self._registry))
        if not isinstance(builder, SpecificationBuilder):
            raise TypeError(
                "a group function must return the SpecificationBuilder it was given, "
                f"filled; got {type(builder).__name__}"
            )
        return builder._spec

    @staticmethod
    def _check(spec: Specification) -> Specification:
        if not isinstance(spec, Specification):
            raise TypeError(f"expected a Specification, got {type(spec).__name__}")
        return spec
