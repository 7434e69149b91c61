"""Compiling specifications and orderings to SQL for one mapped class.

A specification tree from ``cqrs_ddd_specifications`` becomes one boolean
``ColumnElement`` over the model's mapped columns, so filtering always happens in
the database, before ORDER BY, LIMIT and OFFSET. Values are always bound parameters;
field names are looked up among the mapper's attributes and never reach the SQL text
otherwise. The SQL gives the same answer as ``spec.is_satisfied_by`` in memory,
including SQL's three-valued logic for NULL, on PostgreSQL and SQLite:

* ``like`` and ``contains``/``startswith``/``endswith`` are case-sensitive on both
  backends (SQLite's ``LIKE`` is not, so they become ``GLOB`` there); ``ilike`` and
  ``icontains`` fold case with the database's ``lower()``, which is ASCII-only on
  SQLite (and in PostgreSQL's C locale), unlike ``str.lower()`` in memory;
* ``json_has_key`` and ``json_contains`` follow PostgreSQL's ``jsonb`` ``?`` and ``@>``
  (except that a scalar string has no keys, as in memory); on SQLite they are rebuilt
  from ``json_type`` and ``json_each``. JSON null counts as NULL, as ``None`` does in
  memory;
* a value at a path inside a JSON column is compared only with operands of its own
  JSON type (``"5"`` is not ``5``);
* a many-to-one path (``customer.name``) is NULL when there is no related row; a
  collection path (``lines.sku``) means "some related row matches" (EXISTS), for which
  in-memory evaluation has no equivalent;
* an operand is converted to the column's type (an ISO string for a timestamp, an
  enum's value), but a string is not taken for a number or a boolean.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Enum,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute, Mapper, RelationshipProperty
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.types import JSON, String, TypeDecorator, TypeEngine

from cqrs_ddd_persistence_sqlalchemy.exceptions import (
    UnknownFieldError,
    UnsupportedOperatorError,
)
from cqrs_ddd_specifications import (
    AndSpecification,
    AttributeSpecification,
    NotSpecification,
    OrderBy,
    OrSpecification,
    Specification,
    TrueSpecification,
)
from cqrs_ddd_specifications.exceptions import InvalidOperandError

__all__ = ["compile_ordering", "compile_specification"]

_TEXT_OPERATORS = frozenset({"like", "ilike", "contains", "icontains", "startswith", "endswith"})
_ORDER_OPERATORS = frozenset({"gt", "gte", "lt", "lte", "between"})
_JSON_OPERATORS = frozenset({"json_has_key", "json_contains"})
_EQUALITY_OPERATORS = frozenset({"eq", "ne", "in", "not_in"})
# Operand kind -> names of the JSON types it compares with: (PostgreSQL's jsonb_typeof,
# SQLite's json_type).
_JSON_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "string": (("string",), ("text",)),
    "number": (("number",), ("integer", "real")),
    "boolean": (("boolean",), ("true", "false")),
}


def compile_specification(
    spec: Specification,
    model: type[Any],
    dialect: str,
    *,
    aliases: Mapping[str, str] | None = None,
) -> ColumnElement[bool]:
    """Compile ``spec`` to a WHERE clause on ``model`` for ``dialect`` (``"postgresql"``...).

    ``aliases`` maps a field's first segment to the model attribute that holds it,
    for entities whose field names differ from the model's (``"metadata"`` →
    ``"metadata_"``).

    Raises:
        UnknownFieldError: a field is not a mapped column, a path into a JSON column
            or a relationship path.
        UnsupportedOperatorError: an operator does not apply to the field's type.
    """
    return _Compiler(model, dialect, aliases=aliases).compile(spec)


def compile_ordering(ordering: Sequence[OrderBy], model: type[Any]) -> list[UnaryExpression[Any]]:
    """Compile an ordering to ORDER BY terms; NULLs sort last ascending, first descending.

    That is PostgreSQL's default, made explicit so SQLite sorts the same way.

    Raises:
        UnknownFieldError: a field is not a mapped column of ``model``.
    """
    mapper = _mapper(model)
    terms: list[UnaryExpression[Any]] = []
    for order in ordering:
        prop = mapper.column_attrs.get(order.field)
        if prop is None:
            raise UnknownFieldError(
                f"cannot order {model.__name__} by {order.field!r}: not a mapped column "
                f"(columns: {', '.join(sorted(mapper.column_attrs.keys()))})",
                field=order.field,
                model=model,
            )
        column = getattr(model, prop.key)
        terms.append(column.desc().nulls_first() if order.descending else column.asc().nulls_last())
    return terms


def _mapper(model: type[Any]) -> Mapper[Any]:
    from sqlalchemy import inspect

    return cast("Mapper[Any]", inspect(model))


def _is_json(type_: TypeEngine[Any]) -> bool:
    if isinstance(type_, TypeDecorator):
        return _is_json(type_.impl_instance)
    return isinstance(type_, JSON)


def _python_type(type_: TypeEngine[Any]) -> type[Any] | None:
    # Through the impl: a TypeDecorator (UTCDateTime) reports ``object``.
    try:
        return _impl(type_).python_type
    except NotImplementedError:
        return None


@dataclass(frozen=True, slots=True)
class _Target:
    """What a field path resolves to: a column, or a path inside a JSON column."""

    column: InstrumentedAttribute[Any]
    type_: TypeEngine[Any]
    json_path: tuple[str, ...] | None  # None: the column itself; () whole JSON column


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(python_type: type[Any]) -> TypeAdapter[Any]:
    # Building a TypeAdapter costs tens of microseconds; searches reuse a few types.
    adapter = _ADAPTERS.get(python_type)
    if adapter is None:
        adapter = _ADAPTERS[python_type] = TypeAdapter(python_type)
    return adapter


class _Compiler:
    def __init__(
        self,
        model: type[Any],
        dialect: str,
        prefix: str = "",
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.aliases = aliases or {}
        self.model = model
        self.mapper = _mapper(model)
        self.dialect = dialect
        # The path from the root model, so errors name the field as the caller wrote it.
        self.prefix = prefix

    def compile(self, spec: Specification) -> ColumnElement[bool]:
        if isinstance(spec, AttributeSpecification):
            return self._condition(spec)
        if isinstance(spec, AndSpecification):
            return and_(*(self.compile(s) for s in spec.specs))
        if isinstance(spec, OrSpecification):
            return or_(*(self.compile(s) for s in spec.specs))
        if isinstance(spec, NotSpecification):
            return not_(self.compile(spec.spec))
        if isinstance(spec, TrueSpecification):
            return true()
        raise UnsupportedOperatorError(
            f"cannot compile a {type(spec).__name__} to SQL", model=self.model
        )

    # -- fields -------------------------------------------------------------------

    def _condition(self, spec: AttributeSpecification) -> ColumnElement[bool]:
        field = self.prefix + spec.field
        head, _, rest = spec.field.partition(".")
        head = self.aliases.get(head, head)
        relationship = self.mapper.relationships.get(head)
        if relationship is not None and rest:
            return self._relationship(relationship, spec, rest)
        prop = self.mapper.column_attrs.get(head)
        if prop is None:
            known = sorted([*self.mapper.column_attrs.keys(), *self.mapper.relationships.keys()])
            raise UnknownFieldError(
                f"{self.model.__name__} has no mapped column or relationship {head!r} "
                f"(in field {field!r}); known: {', '.join(known)}",
                field=field,
                model=self.model,
            )
        column = getattr(self.model, prop.key)
        type_ = prop.columns[0].type
        if rest:
            if not _is_json(type_):
                raise UnknownFieldError(
                    f"{self.model.__name__}.{head} is not a JSON column, so {field!r} "
                    "cannot address a path inside it",
                    field=field,
                    model=self.model,
                )
            target = _Target(column, type_, tuple(rest.split(".")))
        else:
            target = _Target(column, type_, () if _is_json(type_) else None)
        return self._operator(spec, target)

    def _relationship(
        self, relationship: RelationshipProperty[Any], spec: AttributeSpecification, rest: str
    ) -> ColumnElement[bool]:
        prefix = f"{self.prefix}{relationship.key}."
        related = _Compiler(relationship.mapper.class_, self.dialect, prefix)
        inner = related._condition(
            AttributeSpecification(rest, spec.operator, spec.value, registry=_registry(spec))
        )
        attr = getattr(self.model, relationship.key)
        if relationship.uselist:
            # "items.sku": some related row matches (EXISTS). In memory a path through a
            # list resolves to None, so there is no in-memory answer to follow here.
            return cast("ColumnElement[bool]", attr.any(inner))
        # "customer.name" is the related row's value, or NULL when there is no related
        # row, as in memory. A bare EXISTS would be false, not unknown, for a row whose
        # condition is unknown (NULL name) or that has no related row, so NOT would turn
        # both into true. There is at most one related row, hence this CASE; with none,
        # the answer is what the operator gives for NULL (true for is_null, else unknown).
        whens: list[tuple[Any, Any]] = [
            (attr.has(inner), true()),
            (attr.has(not_(inner)), false()),
        ]
        missing = spec.definition.evaluate(None, spec.value)
        if missing is None:
            return _as_bool(case(*whens))  # else NULL: unknown, or no related row
        whens.append((attr.has(), null()))
        return _as_bool(case(*whens, else_=literal(missing, Boolean())))

    # -- operators ----------------------------------------------------------------

    def _unsupported(self, spec: AttributeSpecification, why: str) -> UnsupportedOperatorError:
        field = self.prefix + spec.field
        return UnsupportedOperatorError(
            f"operator {spec.operator!r} cannot apply to {self.model.__name__}.{spec.field} "
            f"(field {field!r}): {why}",
            field=field,
            model=self.model,
        )

    def _operator(self, spec: AttributeSpecification, target: _Target) -> ColumnElement[bool]:
        op, value = spec.operator, spec.value
        if op in _JSON_OPERATORS:
            if target.json_path is None:
                raise self._unsupported(spec, "it is not a JSON column")
            if op == "json_has_key":
                return self._json_has_key(target, value)
            return self._json_contains(target, value)

        expr: Any
        if target.json_path is None:
            expr = target.column
            python_type = _python_type(target.type_)
            if op in _TEXT_OPERATORS and python_type is not str:
                raise self._unsupported(spec, f"it is not a text column ({target.type_})")
            if op in _ORDER_OPERATORS and isinstance(_impl(target.type_), Enum):
                # In memory an enum compares by its values; PostgreSQL orders a native
                # enum by declaration and SQLite stores names, so neither agrees.
                raise self._unsupported(spec, "an enum column has no order to compare by")
            value = self._coerce(spec, python_type, value)
        elif target.json_path == ():
            if op not in ("is_null", "is_not_null"):
                raise self._unsupported(
                    spec,
                    "it is a whole JSON document; compare a path inside it "
                    f"('{spec.field}.key') or use json_contains",
                )
            # A document that is JSON null is None in memory, so it counts as NULL.
            expr = self._json_type(target)
            expr = func.nullif(expr, "null")
        elif op in _EQUALITY_OPERATORS:
            return self._json_equality(spec, target)
        else:
            expr = self._json_scalar(spec, target)

        handler = _SCALAR_HANDLERS.get(op)
        if handler is None:
            raise self._unsupported(spec, "the operator has no SQL form")
        return handler(self, expr, value)

    def _coerce(
        self, spec: AttributeSpecification, python_type: type[Any] | None, value: Any
    ) -> Any:
        # Bring operands to the column's type as the database would cast a literal,
        # e.g. an ISO string for a timestamp column ("2024-05-01T00:00:00Z").
        if python_type is None or value is None or spec.operator in _TEXT_OPERATORS:
            return value
        adapter = _adapter(python_type)

        def invalid(item: Any) -> InvalidOperandError:
            return InvalidOperandError(
                field=self.prefix + spec.field,
                operator=spec.operator,
                value=item,
                expected=f"a value of the column's type ({python_type.__name__})",
            )

        def one(item: Any) -> Any:
            if item is None or isinstance(item, python_type):
                return item
            if isinstance(item, str) and python_type in (int, float, bool):
                # In memory "5" is not 5 (and "true" is not True); casting would match
                # rows that is_satisfied_by rejects.
                raise invalid(item)
            try:
                return adapter.validate_python(item)
            except ValidationError as exc:
                raise invalid(item) from exc

        if isinstance(value, tuple):
            return tuple(one(item) for item in value)
        return one(value)

    # -- JSON ---------------------------------------------------------------------
    #
    # A value inside a JSON document can be of any JSON type, and in memory it is
    # compared as the Python value it is: "5" is not 5, and a text operator on a number
    # is an error. So SQL compares it only where its JSON type matches the operand's
    # kind; elsewhere eq is false and ne true (as in memory), and an ordering or text
    # operator is unknown (where memory raises). Casting blindly instead would match
    # "5" with 5, differ between backends (SQLite's text of true is "1") and fail on
    # PostgreSQL ("invalid input syntax for type double precision").

    def _json_type(self, target: _Target) -> Any:
        """The JSON type name of the value at the path; NULL when missing or SQL NULL."""
        if self.dialect == "postgresql":
            return func.jsonb_typeof(self._pg_value(target))
        return func.json_type(target.column, self._sqlite_path(target))

    def _json_is(self, target: _Target, kind: str) -> ColumnElement[bool]:
        postgres, sqlite = _JSON_KINDS[kind]
        names = postgres if self.dialect == "postgresql" else sqlite
        return cast("ColumnElement[bool]", self._json_type(target).in_(names))

    def _json_cast(self, target: _Target, kind: str) -> Any:
        element = target.column[target.json_path]
        if kind == "string":
            return element.as_string()
        if kind == "number":
            return element.as_float()
        return element.as_boolean()

    def _json_typed(self, target: _Target, kind: str) -> Any:
        """The value at the path as an SQL value of ``kind``; NULL if it is of another type."""
        return case((self._json_is(target, kind), self._json_cast(target, kind)))

    def _json_kind(self, spec: AttributeSpecification, values: Sequence[Any]) -> str:
        kinds = {_json_kind(value) for value in values if value is not None}
        if len(kinds) != 1 or None in kinds:
            raise InvalidOperandError(
                field=self.prefix + spec.field,
                operator=spec.operator,
                value=spec.value,
                expected="JSON scalars of one kind (str, int/float or bool) to compare with "
                "a value inside a JSON document",
            )
        return cast("str", kinds.pop())

    def _json_scalar(self, spec: AttributeSpecification, target: _Target) -> Any:
        op, value = spec.operator, spec.value
        if op in ("is_null", "is_not_null"):
            # Missing keys and JSON null are both NULL here, as they are None in memory.
            return target.column[target.json_path].as_string()
        if op in _TEXT_OPERATORS:
            return self._json_typed(target, "string")
        values = value if isinstance(value, tuple) else (value,)
        return self._json_typed(target, self._json_kind(spec, values))

    def _json_equality(self, spec: AttributeSpecification, target: _Target) -> ColumnElement[bool]:
        op, value = spec.operator, spec.value
        values: tuple[Any, ...] = value if op in ("in", "not_in") else (value,)
        json_type = self._json_type(target)
        equal: list[ColumnElement[bool]] = []
        for item in values:
            if item is None:
                continue  # ``in`` a list holding NULL: see below
            kind = self._json_kind(spec, (item,))
            equal.append(
                _as_bool(
                    case(
                        (func.coalesce(json_type, "null") == "null", null()),
                        (self._json_is(target, kind), self._json_cast(target, kind) == item),
                        else_=false(),
                    )
                )
            )
        if None in values:
            # x IN (a, NULL) is true on a match, else unknown: OR NULL does just that.
            equal.append(_as_bool(null()))
        result = or_(*equal)
        return not_(result) if op in ("ne", "not_in") else result

    def _sqlite_path(self, target: _Target) -> str:
        path = "$"
        for segment in target.json_path or ():
            path += f'."{segment}"'  # segments are identifiers (validated by the spec)
        return path

    def _json_has_key(self, target: _Target, key: str) -> ColumnElement[bool]:
        if self.dialect == "postgresql":
            document = self._pg_document(target)
            # jsonb's ? is also true for a scalar string equal to the key ('"a"' ? 'a');
            # in memory only an object's keys and an array's strings count.
            return and_(
                func.jsonb_typeof(document).in_(("object", "array")),
                cast("ColumnElement[bool]", document.has_key(key)),
            )
        path = self._sqlite_path(target)
        doc_type = func.json_type(target.column, path)
        each = func.json_each(target.column, path).table_valued("key", "value", "type")
        found = exists(
            select(literal(1))
            .select_from(each)
            .where(
                or_(
                    and_(doc_type == "object", each.c.key == key),
                    and_(doc_type == "array", each.c.type == "text", each.c.value == key),
                )
            )
        )
        return _unknown_if_null(doc_type, found)

    def _pg_value(self, target: _Target) -> Any:
        """The ``jsonb`` value at the path (a ``json`` column is cast to ``jsonb``)."""
        column: Any = target.column
        if not isinstance(_impl(target.type_), JSONB):
            column = sql_cast(column, JSONB)
        if target.json_path:
            column = column[target.json_path]
        return column

    def _pg_document(self, target: _Target) -> Any:
        # JSON null behaves as SQL NULL, as it does in memory.
        return func.nullif(self._pg_value(target), sql_cast(literal("null"), JSONB), type_=JSONB)

    def _json_contains(self, target: _Target, value: Any) -> ColumnElement[bool]:
        if self.dialect == "postgresql":
            return cast(
                "ColumnElement[bool]",
                self._pg_document(target).contains(sql_cast(literal(value, JSON()), JSONB)),
            )
        path = self._sqlite_path(target)
        doc_type = func.json_type(target.column, path)
        if isinstance(value, list | dict):
            found = _sqlite_contains(target.column, path, value)
        else:
            # At the top level an array contains a scalar that is one of its elements.
            each = func.json_each(target.column, path).table_valued("value", "type")
            in_array = and_(
                doc_type == "array",
                exists(
                    select(literal(1))
                    .select_from(each)
                    .where(_sqlite_scalar_match(each.c.type, each.c.value, value))
                ),
            )
            found = or_(in_array, _sqlite_scalar_at(target.column, path, value))
        return _unknown_if_null(doc_type, found)


def _registry(spec: AttributeSpecification) -> Any:
    # Rebuild the inner condition with an operator known to exist (its canonical name).
    from cqrs_ddd_specifications import OperatorRegistry

    registry = OperatorRegistry()
    registry.register(spec.definition)
    return registry


def _json_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _as_bool(expr: Any) -> ColumnElement[bool]:
    return cast("ColumnElement[bool]", type_coerce(expr, Boolean()))


def _impl(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    return type_


def _unknown_if_null(doc_type: Any, found: ColumnElement[bool]) -> ColumnElement[bool]:
    # A missing path, SQL NULL or JSON null compares as unknown, as in memory.
    return cast(
        "ColumnElement[bool]",
        case((func.coalesce(doc_type, "null") == "null", null()), else_=found).cast(Boolean),
    )


def _sqlite_scalar_match(type_col: Any, value_col: Any, value: Any) -> ColumnElement[bool]:
    if isinstance(value, bool):
        return cast("ColumnElement[bool]", type_col == ("true" if value else "false"))
    if value is None:
        return cast("ColumnElement[bool]", type_col == "null")
    if isinstance(value, int | float):
        return and_(type_col.in_(("integer", "real")), value_col == value)
    return and_(type_col == "text", value_col == value)


def _sqlite_type_at(column: Any, path: str) -> Any:
    # A missing path has no type (NULL); inside a containment test it must make the
    # comparison false, not unknown, or NOT json_contains would drop the row.
    return func.coalesce(func.json_type(column, path), "")


def _sqlite_scalar_at(column: Any, path: str, value: Any) -> ColumnElement[bool]:
    return _sqlite_scalar_match(
        _sqlite_type_at(column, path), func.json_extract(column, path), value
    )


def _sqlite_contains(column: Any, path: str, value: Any) -> ColumnElement[bool]:
    """``document at path @> value`` for SQLite, following jsonb's containment rules."""
    if isinstance(value, dict):
        conditions: list[ColumnElement[bool]] = [_sqlite_type_at(column, path) == "object"]
        for key, item in value.items():
            if '"' in key or "\\" in key:
                raise UnsupportedOperatorError(
                    f"json_contains on SQLite cannot address the key {key!r}"
                )
            conditions.append(_sqlite_contains(column, f'{path}."{key}"', item))
        return and_(*conditions)
    if isinstance(value, list):
        conditions = [_sqlite_type_at(column, path) == "array"]
        for element in value:
            each = func.json_each(column, path).table_valued("value", "type").alias()
            if isinstance(element, dict | list):
                # json_each gives a string element as bare text, which is no JSON: only
                # objects and arrays are searched further.
                nested = case((each.c.type.in_(("object", "array")), each.c.value))
                match = _sqlite_contains(nested, "$", element)
            else:
                match = _sqlite_scalar_match(each.c.type, each.c.value, element)
            conditions.append(exists(select(literal(1)).select_from(each).where(match)))
        return and_(*conditions)
    return _sqlite_scalar_at(column, path, value)


# -- scalar operators -------------------------------------------------------------------


def _like_to_glob(pattern: str) -> str:
    """Translate a LIKE pattern (``%``, ``_``, ``\\`` escapes) to a case-sensitive GLOB."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            char = next(chars, "\\")
            out.append(_glob_literal(char))
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_glob_literal(char))
    return "".join(out)


def _glob_literal(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _like(c: _Compiler, expr: Any, pattern: str) -> ColumnElement[bool]:
    if c.dialect == "sqlite":
        return cast(
            "ColumnElement[bool]", expr.op("GLOB", is_comparison=True)(_like_to_glob(pattern))
        )
    return cast("ColumnElement[bool]", expr.like(pattern, escape="\\"))


def _ilike(c: _Compiler, expr: Any, pattern: str) -> ColumnElement[bool]:
    return cast(
        "ColumnElement[bool]",
        func.lower(expr).like(func.lower(literal(pattern, String())), escape="\\"),
    )


def _substring(kind: str) -> Callable[[_Compiler, Any, str], ColumnElement[bool]]:
    def handler(c: _Compiler, expr: Any, value: str) -> ColumnElement[bool]:
        if c.dialect == "sqlite":
            glob = _glob_literal(value)
            pattern = {"contains": f"*{glob}*", "startswith": f"{glob}*", "endswith": f"*{glob}"}[
                kind
            ]
            return cast("ColumnElement[bool]", expr.op("GLOB", is_comparison=True)(pattern))
        method = getattr(expr, kind)
        return cast("ColumnElement[bool]", method(value, autoescape=True))

    return handler


def _icontains(c: _Compiler, expr: Any, value: str) -> ColumnElement[bool]:
    return func.lower(expr).contains(value.lower(), autoescape=True)


_SCALAR_HANDLERS: dict[str, Callable[[_Compiler, Any, Any], ColumnElement[bool]]] = {
    "eq": lambda c, e, v: e == v,
    "ne": lambda c, e, v: e != v,
    "gt": lambda c, e, v: e > v,
    "gte": lambda c, e, v: e >= v,
    "lt": lambda c, e, v: e < v,
    "lte": lambda c, e, v: e <= v,
    "in": lambda c, e, v: e.in_(v),
    "not_in": lambda c, e, v: e.not_in(v),
    "between": lambda c, e, v: e.between(v[0], v[1]),
    "like": _like,
    "ilike": _ilike,
    "contains": _substring("contains"),
    "startswith": _substring("startswith"),
    "endswith": _substring("endswith"),
    "icontains": _icontains,
    "is_null": lambda c, e, v: e.is_(None),
    "is_not_null": lambda c, e, v: e.is_not(None),
}
