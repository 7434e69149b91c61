"""The specification tree and its in-memory, three-valued evaluation.

A specification is an immutable tree of hashable nodes:

- ``AttributeSpecification(field, operator, value)``: one condition; ``operator`` is
  always a canonical name (``"eq"``, never ``"="``).
- ``AndSpecification(specs)``, ``OrSpecification(specs)``, ``NotSpecification(spec)``.
- ``TrueSpecification()``: matches everything (an empty builder builds it).

``evaluate(obj)`` mirrors SQL: it returns ``True``, ``False`` or ``None`` (unknown,
SQL NULL), and and/or/not follow Kleene logic. ``is_satisfied_by(obj)`` is
``evaluate(obj) is True``, which is what a ``WHERE`` clause keeps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from .exceptions import (
    MalformedSpecificationError,
    SpecificationError,
    SpecificationEvaluationError,
)
from .fields import resolve_field, validate_field
from .operators import Operator, OperatorRegistry, _default_registry

__all__ = [
    "AndSpecification",
    "AttributeSpecification",
    "NotSpecification",
    "OrSpecification",
    "Specification",
    "TrueSpecification",
]


class Specification(ABC):
    """A predicate over objects that can also be compiled to SQL.

    Combine with ``&``, ``|`` and ``~``; nested and/or of the same kind are flattened,
    ``TrueSpecification`` is absorbed (``all & x`` is ``x``, ``all | x`` is ``all``) and
    ``~~x`` is ``x``, all of which hold in three-valued logic.
    """

    __slots__ = ()

    @abstractmethod
    def evaluate(self, obj: Any) -> bool | None:
        """Return ``True``, ``False`` or ``None`` (unknown) for ``obj``, as SQL would."""

    def is_satisfied_by(self, obj: Any) -> bool:
        """Return whether ``obj`` matches, i.e. ``evaluate(obj) is True``."""
        return self.evaluate(obj) is True

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-friendly form read back by ``from_dict``."""

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], registry: OperatorRegistry | None = None
    ) -> Specification:
        """Parse the form produced by ``to_dict``; raise ``MalformedSpecificationError``."""
        from .serialization import from_dict

        spec = from_dict(data, registry=registry)
        if not isinstance(spec, cls):
            raise MalformedSpecificationError(
                f"expected a {cls.__name__}, got a {type(spec).__name__}"
            )
        return spec

    def __and__(self, other: object) -> Specification:
        if not isinstance(other, Specification):
            return NotImplemented
        if isinstance(self, TrueSpecification):
            return other
        if isinstance(other, TrueSpecification):
            return self
        left = self.specs if isinstance(self, AndSpecification) else (self,)
        right = other.specs if isinstance(other, AndSpecification) else (other,)
        return AndSpecification((*left, *right))

    def __or__(self, other: object) -> Specification:
        if not isinstance(other, Specification):
            return NotImplemented
        if isinstance(self, TrueSpecification):
            return self
        if isinstance(other, TrueSpecification):
            return other
        left = self.specs if isinstance(self, OrSpecification) else (self,)
        right = other.specs if isinstance(other, OrSpecification) else (other,)
        return OrSpecification((*left, *right))

    def __invert__(self) -> Specification:
        if isinstance(self, NotSpecification):
            return self.spec
        return NotSpecification(self)


def _jsonable(value: Any) -> Any:
    """Tuples become lists, recursively; anything else is returned as is."""
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _freeze(value: Any) -> Any:
    """A hashable stand-in for ``value`` (lists and dicts are allowed in operands)."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, set | frozenset):
        return frozenset(_freeze(item) for item in value)
    if isinstance(value, Mapping):
        return frozenset((key, _freeze(item)) for key, item in value.items())
    return value


@dataclass(frozen=True, slots=True, init=False)
class AttributeSpecification(Specification):
    """One condition: ``field <operator> value``.

    The operator, given by name or symbol, is resolved through ``registry`` (the
    default operators when ``None``) and stored under its canonical name, so a node can
    never hold ``"="``. The operand is validated and normalised by the operator (lists
    for ``in``/``between`` become tuples); ``eq``/``ne`` with ``None`` become
    ``is_null``/``is_not_null``.

    Raises:
        InvalidFieldError: ``field`` is not a dotted path of identifiers.
        UnknownOperatorError: ``operator`` is not in the registry.
        InvalidOperandError: ``value`` does not fit the operator.
    """

    field: str
    operator: str
    value: Any
    _definition: Operator = dc_field(init=False, repr=False, compare=False)

    def __init__(
        self,
        field: str,
        operator: str,
        value: Any = None,
        *,
        registry: OperatorRegistry | None = None,
    ) -> None:
        field = validate_field(field)
        if registry is None:
            registry = _default_registry()
        elif not isinstance(registry, OperatorRegistry):
            raise TypeError(f"registry must be an OperatorRegistry, got {type(registry).__name__}")
        definition = registry.get(operator)
        if value is None and definition.none_operand_operator is not None:
            definition = registry.get(definition.none_operand_operator)
        value = definition.validate(value, field=field)
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "operator", definition.name)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "_definition", definition)

    @property
    def definition(self) -> Operator:
        """The resolved ``Operator`` (used for in-memory evaluation)."""
        return self._definition

    def __hash__(self) -> int:
        return hash((self.field, self.operator, _freeze(self.value)))

    def evaluate(self, obj: Any) -> bool | None:
        actual = resolve_field(obj, self.field)
        try:
            return self._definition.evaluate(actual, self.value)
        except TypeError as exc:
            raise SpecificationEvaluationError(
                f"cannot evaluate {self.field!r} {self.operator} {self.value!r}: the "
                f"field holds {type(actual).__name__}, the operand is "
                f"{type(self.value).__name__} ({exc})",
                field=self.field,
                operator=self.operator,
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "op": self.operator}
        if self.value is not None:
            data["value"] = _jsonable(self.value)
        return data


def _operands(owner: str, specs: Iterable[Specification]) -> tuple[Specification, ...]:
    if isinstance(specs, Specification) or not isinstance(specs, Iterable):
        raise TypeError(f"{owner} takes a tuple of specifications, got {type(specs).__name__}")
    result = tuple(specs)
    if not result:
        raise SpecificationError(f"{owner} needs at least one specification")
    for spec in result:
        if not isinstance(spec, Specification):
            raise TypeError(f"{owner} takes specifications, got {type(spec).__name__}")
    return result


@dataclass(frozen=True, slots=True)
class AndSpecification(Specification):
    """All of ``specs`` (Kleene: false if any is false, else unknown if any is unknown)."""

    specs: tuple[Specification, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "specs", _operands("AndSpecification", self.specs))

    def evaluate(self, obj: Any) -> bool | None:
        # Every operand is evaluated (no short-circuit), so a type error surfaces no
        # matter the order of the operands, as it does in SQL.
        results = [spec.evaluate(obj) for spec in self.specs]
        if any(result is False for result in results):
            return False
        if any(result is None for result in results):
            return None
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"and": [spec.to_dict() for spec in self.specs]}


@dataclass(frozen=True, slots=True)
class OrSpecification(Specification):
    """Any of ``specs`` (Kleene: true if any is true, else unknown if any is unknown)."""

    specs: tuple[Specification, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "specs", _operands("OrSpecification", self.specs))

    def evaluate(self, obj: Any) -> bool | None:
        results = [spec.evaluate(obj) for spec in self.specs]
        if any(result is True for result in results):
            return True
        if any(result is None for result in results):
            return None
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"or": [spec.to_dict() for spec in self.specs]}


@dataclass(frozen=True, slots=True)
class NotSpecification(Specification):
    """The negation of ``spec``; unknown stays unknown."""

    spec: Specification

    def __post_init__(self) -> None:
        if not isinstance(self.spec, Specification):
            raise TypeError(
                f"NotSpecification takes a specification, got {type(self.spec).__name__}"
            )

    def evaluate(self, obj: Any) -> bool | None:
        result = self.spec.evaluate(obj)
        return None if result is None else not result

    def to_dict(self) -> dict[str, Any]:
        return {"not": self.spec.to_dict()}


@dataclass(frozen=True, slots=True)
class TrueSpecification(Specification):
    """Matches everything; what an empty ``SpecificationBuilder`` builds."""

    def evaluate(self, obj: Any) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"all": True}
