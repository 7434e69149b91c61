"""Operators: canonical names, aliases, operand validation and in-memory semantics.

Every condition stores the *canonical* name of its operator (``"eq"``, never ``"="``),
which is what the SQL compiler dispatches on. In-memory evaluation follows SQL's
three-valued logic: an operator that compares returns ``None`` (unknown) when the
actual value is ``None`` (NULL), and ``in``/``not_in`` treat a ``None`` in the list as
SQL does.

Before comparing, a string operand is converted to the type of the actual value when
that value is a ``datetime``, ``date``, ``time``, ``UUID`` or ``Decimal``, the way SQL
casts a literal to the column type (``from_dict`` keeps ISO strings as strings); an
``Enum`` actual value is compared through its ``.value`` unless the operand is an
``Enum`` too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any
from uuid import UUID

from .exceptions import InvalidOperandError, SpecificationError, UnknownOperatorError

__all__ = [
    "Evaluator",
    "Operator",
    "OperatorRegistry",
    "Validator",
    "build_default_registry",
    "like_to_regex",
]

Evaluator = Callable[[Any, Any], bool | None]
"""``(actual, operand) -> True | False | None``; raise ``TypeError`` for incomparable values."""

Validator = Callable[[Any], Any]
"""``(operand) -> normalised operand``; raise ``ValueError``/``TypeError`` saying what fits."""

_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True, slots=True, eq=False)
class Operator:
    """An operator: canonical name, aliases, operand validation and in-memory evaluation.

    Attributes:
        name: canonical name, lower-case identifier (``"eq"``); what nodes store.
        evaluator: ``(actual, operand) -> bool | None`` for in-memory evaluation.
        aliases: other names or symbols it is found under (``"="``, ``"=="``).
        validator: checks and normalises the operand; it raises ``ValueError`` or
            ``TypeError`` whose message says what is expected. ``None`` accepts anything.
        propagates_null: when true (every comparison), an actual value of ``None``
            makes the result unknown (``None``) without calling ``evaluator``.
        none_operand_operator: canonical name of the operator used instead when the
            operand is ``None`` (``eq`` becomes ``is_null``, like ``col == None``).
    """

    name: str
    _: KW_ONLY
    evaluator: Evaluator = field(repr=False)
    aliases: tuple[str, ...] = ()
    validator: Validator | None = field(default=None, repr=False)
    propagates_null: bool = True
    none_operand_operator: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or _NAME.fullmatch(self.name) is None:
            raise ValueError(f"operator name must be a lower-case identifier, got {self.name!r}")
        aliases = tuple(self.aliases)
        for alias in aliases:
            if not isinstance(alias, str) or not alias or alias != alias.strip():
                raise ValueError(f"operator alias must be a non-blank string, got {alias!r}")
        object.__setattr__(self, "aliases", aliases)

    def validate(self, value: Any, *, field: str) -> Any:
        """Return the normalised operand, or raise ``InvalidOperandError``."""
        if self.validator is None:
            return value
        try:
            return self.validator(value)
        except (ValueError, TypeError) as exc:
            raise InvalidOperandError(
                field=field, operator=self.name, value=value, expected=str(exc)
            ) from exc

    def evaluate(self, actual: Any, operand: Any) -> bool | None:
        """Evaluate ``actual <op> operand`` with SQL's treatment of NULL (``None``)."""
        if actual is None and self.propagates_null:
            return None
        return self.evaluator(actual, operand)


class OperatorRegistry:
    """Operators looked up by canonical name or alias; names are case-insensitive."""

    __slots__ = ("_by_key", "_operators")

    def __init__(self, operators: Iterable[Operator] = ()) -> None:
        self._operators: dict[str, Operator] = {}
        self._by_key: dict[str, Operator] = {}
        for operator in operators:
            self.register(operator)

    def register(self, operator: Operator) -> None:
        """Add ``operator``; its name and aliases must not be taken already."""
        if not isinstance(operator, Operator):
            raise TypeError(f"expected an Operator, got {type(operator).__name__}")
        keys = [operator.name, *(alias.lower() for alias in operator.aliases)]
        for key in keys:
            taken = self._by_key.get(key)
            if taken is not None:
                raise SpecificationError(
                    f"cannot register operator {operator.name!r}: {key!r} already "
                    f"names operator {taken.name!r}"
                )
        self._operators[operator.name] = operator
        for key in keys:
            self._by_key[key] = operator

    def get(self, name: str) -> Operator:
        """Return the operator named or aliased ``name``, or raise ``UnknownOperatorError``."""
        operator = self._by_key.get(name.lower()) if isinstance(name, str) else None
        if operator is None:
            raise UnknownOperatorError(name, self._operators)
        return operator

    def names(self) -> tuple[str, ...]:
        """Canonical names of the registered operators, sorted."""
        return tuple(sorted(self._operators))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_key

    def __iter__(self) -> Iterator[Operator]:
        return iter(self._operators.values())

    def __len__(self) -> int:
        return len(self._operators)

    def __repr__(self) -> str:
        return f"OperatorRegistry({', '.join(self.names())})"


# --- operand validators -----------------------------------------------------------

_COLLECTIONS = (list, tuple, set, frozenset, dict)


def _single(value: Any) -> Any:
    if isinstance(value, _COLLECTIONS):
        raise TypeError("a single value (use 'in' for a list of values)")
    return value


def _single_not_none(value: Any) -> Any:
    if value is None:
        raise ValueError("a value that is not None")
    return _single(value)


def _non_empty_list(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple | set | frozenset) or not value:
        raise TypeError("a non-empty list of values")
    return tuple(value)


def _pair(value: Any) -> tuple[Any, Any]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise TypeError("a list of exactly 2 items [low, high]")
    low, high = value
    if low is None or high is None:
        raise ValueError("a list of exactly 2 items [low, high], neither of them None")
    return (_single(low), _single(high))


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


def _like_pattern(value: Any) -> str:
    pattern = _string(value)
    like_to_regex(pattern)
    return pattern


def _no_operand(value: Any) -> None:
    if value is not None:
        raise ValueError("no value (None or omitted)")


def _json_operand(value: Any) -> Any:
    if value is None:
        raise ValueError("a JSON value other than None")
    return _json_value(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a JSON value (JSON has no NaN or infinity)")
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("a JSON value (object keys must be strings)")
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    raise TypeError(
        f"a JSON value (dict, list, str, int, float, bool or None), not {type(value).__name__}"
    )


# --- evaluators -----------------------------------------------------------------------

_PARSERS: tuple[tuple[type, Callable[[str], Any]], ...] = (
    # datetime before date: a datetime is a date.
    (datetime, datetime.fromisoformat),
    (date, date.fromisoformat),
    (time, time.fromisoformat),
    (UUID, UUID),
    (Decimal, Decimal),
)


def _align(actual: Any, operand: Any) -> tuple[Any, Any]:
    """Bring ``operand`` to the type of ``actual``, as SQL casts a literal to the column."""
    if isinstance(actual, Enum) and not isinstance(operand, Enum):
        actual = actual.value
    if isinstance(operand, str) and not isinstance(actual, str):
        for kind, parse in _PARSERS:
            if isinstance(actual, kind):
                try:
                    operand = parse(operand)
                except (ValueError, ArithmeticError) as exc:
                    raise TypeError(
                        f"cannot compare {type(actual).__name__} with {operand!r}"
                    ) from exc
                break
    return actual, operand


def _eq(actual: Any, operand: Any) -> bool:
    actual, operand = _align(actual, operand)
    return bool(actual == operand)


def _ne(actual: Any, operand: Any) -> bool:
    return not _eq(actual, operand)


def _gt(actual: Any, operand: Any) -> bool:
    actual, operand = _align(actual, operand)
    return bool(actual > operand)


def _gte(actual: Any, operand: Any) -> bool:
    actual, operand = _align(actual, operand)
    return bool(actual >= operand)


def _lt(actual: Any, operand: Any) -> bool:
    actual, operand = _align(actual, operand)
    return bool(actual < operand)


def _lte(actual: Any, operand: Any) -> bool:
    actual, operand = _align(actual, operand)
    return bool(actual <= operand)


def _in(actual: Any, operands: tuple[Any, ...]) -> bool | None:
    # SQL: x IN (a, b, NULL) is true on a match, else unknown because of the NULL.
    saw_null = False
    for operand in operands:
        if operand is None:
            saw_null = True
        elif _eq(actual, operand):
            return True
    return None if saw_null else False


def _not_in(actual: Any, operands: tuple[Any, ...]) -> bool | None:
    result = _in(actual, operands)
    return None if result is None else not result


def _between(actual: Any, bounds: tuple[Any, Any]) -> bool:
    low, high = bounds
    # Both comparisons run, as in SQL, so a type error is never hidden by the first.
    above_low = _gte(actual, low)
    below_high = _lte(actual, high)
    return above_low and below_high


def _text(actual: Any, operator: str) -> str:
    if not isinstance(actual, str):
        raise TypeError(f"{operator!r} needs a string value, got {type(actual).__name__}")
    return actual


@lru_cache(maxsize=256)
def like_to_regex(pattern: str) -> re.Pattern[str]:
    r"""Translate a SQL LIKE pattern into a regex anchored at both ends.

    ``%`` matches any sequence, ``_`` one character, and a backslash makes the next
    character literal (``\%``, ``\_``, ``\\``). A pattern ending in a lone backslash is
    rejected with ``ValueError``. The SQL side must compile with ``ESCAPE '\'``.
    """
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError("a LIKE pattern that does not end with the escape '\\'")
            parts.append(re.escape(escaped))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _like(actual: Any, pattern: str) -> bool:
    return like_to_regex(pattern).fullmatch(_text(actual, "like")) is not None


def _ilike(actual: Any, pattern: str) -> bool:
    text = _text(actual, "ilike").lower()
    return like_to_regex(pattern.lower()).fullmatch(text) is not None


def _contains(actual: Any, operand: str) -> bool:
    return operand in _text(actual, "contains")


def _icontains(actual: Any, operand: str) -> bool:
    return operand.lower() in _text(actual, "icontains").lower()


def _startswith(actual: Any, operand: str) -> bool:
    return _text(actual, "startswith").startswith(operand)


def _endswith(actual: Any, operand: str) -> bool:
    return _text(actual, "endswith").endswith(operand)


def _is_null(actual: Any, _operand: None) -> bool:
    return actual is None


def _is_not_null(actual: Any, _operand: None) -> bool:
    return actual is not None


def _json(actual: Any, operator: str) -> Any:
    if not isinstance(actual, Mapping | list | tuple | str | int | float):
        raise TypeError(f"{operator!r} needs a JSON value, got {type(actual).__name__}")
    return actual


def _json_has_key(actual: Any, key: str) -> bool:
    # PostgreSQL ``jsonb ? key``: a top-level key of an object, or a string element of
    # an array.
    document = _json(actual, "json_has_key")
    if isinstance(document, Mapping):
        return key in document
    if isinstance(document, list | tuple):
        return any(isinstance(item, str) and item == key for item in document)
    return False


def _json_scalar_equal(left: Any, right: Any) -> bool:
    # JSON keeps booleans apart from numbers (true is not 1), unlike Python.
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float | Decimal) and isinstance(right, int | float | Decimal):
        return bool(left == right)
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return left is None and right is None


def _json_deep_contains(container: Any, item: Any) -> bool:
    if isinstance(item, Mapping):
        return isinstance(container, Mapping) and all(
            key in container and _json_deep_contains(container[key], value)
            for key, value in item.items()
        )
    if isinstance(item, list | tuple):
        return isinstance(container, list | tuple) and all(
            any(_json_deep_contains(candidate, element) for candidate in container)
            for element in item
        )
    if isinstance(container, Mapping | list | tuple):
        return False
    return _json_scalar_equal(container, item)


def _json_contains(actual: Any, operand: Any) -> bool:
    # PostgreSQL ``jsonb @>``; its one exception to "structures must match": at the top
    # level, an array contains a scalar that is one of its elements.
    document = _json(actual, "json_contains")
    if isinstance(document, list | tuple) and not isinstance(operand, Mapping | list):
        return any(_json_scalar_equal(element, operand) for element in document)
    return _json_deep_contains(document, operand)


def build_default_registry() -> OperatorRegistry:
    """Return a new registry holding the built-in operators.

    ``eq`` (``=``, ``==``), ``ne`` (``!=``, ``<>``), ``gt`` (``>``), ``gte`` (``>=``),
    ``lt`` (``<``), ``lte`` (``<=``), ``in``, ``not_in``, ``between``, ``like``,
    ``ilike``, ``contains``, ``icontains``, ``startswith``, ``endswith``, ``is_null``,
    ``is_not_null``, ``json_has_key`` and ``json_contains``.
    """
    return OperatorRegistry(
        [
            Operator(
                "eq",
                evaluator=_eq,
                aliases=("=", "=="),
                validator=_single,
                none_operand_operator="is_null",
            ),
            Operator(
                "ne",
                evaluator=_ne,
                aliases=("!=", "<>"),
                validator=_single,
                none_operand_operator="is_not_null",
            ),
            Operator("gt", evaluator=_gt, aliases=(">",), validator=_single_not_none),
            Operator("gte", evaluator=_gte, aliases=(">=",), validator=_single_not_none),
            Operator("lt", evaluator=_lt, aliases=("<",), validator=_single_not_none),
            Operator("lte", evaluator=_lte, aliases=("<=",), validator=_single_not_none),
            Operator("in", evaluator=_in, validator=_non_empty_list),
            Operator("not_in", evaluator=_not_in, validator=_non_empty_list),
            Operator("between", evaluator=_between, validator=_pair),
            Operator("like", evaluator=_like, validator=_like_pattern),
            Operator("ilike", evaluator=_ilike, validator=_like_pattern),
            Operator("contains", evaluator=_contains, validator=_string),
            Operator("icontains", evaluator=_icontains, validator=_string),
            Operator("startswith", evaluator=_startswith, validator=_string),
            Operator("endswith", evaluator=_endswith, validator=_string),
            Operator("is_null", evaluator=_is_null, validator=_no_operand, propagates_null=False),
            Operator(
                "is_not_null",
                evaluator=_is_not_null,
                validator=_no_operand,
                propagates_null=False,
            ),
            Operator("json_has_key", evaluator=_json_has_key, validator=_string),
            Operator("json_contains", evaluator=_json_contains, validator=_json_operand),
        ]
    )


_default: OperatorRegistry | None = None


def _default_registry() -> OperatorRegistry:
    """The registry used when none is given; package-internal and never mutated."""
    global _default
    if _default is None:
        _default = build_default_registry()
    return _default
