"""``QueryOptions``: what to search for (specification), in which order, which page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from typing import Any, TypeVar

from .exceptions import InvalidQueryOptionsError, SpecificationEvaluationError
from .fields import resolve_field, validate_field
from .operators import OperatorRegistry
from .serialization import from_dict
from .specification import Specification

__all__ = ["OrderBy", "QueryOptions"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OrderBy:
    """Sort by ``field`` (a dotted path), ascending unless ``descending``."""

    field: str
    descending: bool = False

    def __post_init__(self) -> None:
        validate_field(self.field)
        if not isinstance(self.descending, bool):
            raise TypeError(f"descending must be a bool, got {type(self.descending).__name__}")

    @classmethod
    def parse(cls, text: str) -> OrderBy:
        """Parse ``"-created_at"`` (descending), ``"+name"`` or ``"name"`` (ascending)."""
        if not isinstance(text, str):
            raise InvalidQueryOptionsError(
                f"an ordering must be a string such as '-created_at' or an OrderBy, "
                f"got {type(text).__name__}"
            )
        if text[:1] in ("-", "+"):
            return cls(text[1:], descending=text[0] == "-")
        return cls(text)

    def __str__(self) -> str:
        return f"-{self.field}" if self.descending else self.field


def _ordering(items: Iterable[OrderBy | str]) -> tuple[OrderBy, ...]:
    return tuple(item if isinstance(item, OrderBy) else OrderBy.parse(item) for item in items)


def _check_count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidQueryOptionsError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InvalidQueryOptionsError(f"{name} must be >= {minimum}, got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryOptions:
    """Immutable search options; every ``with_*`` method returns a new instance.

    Defaults: no specification (everything matches), no ordering, no limit, offset 0.
    ``limit`` is ``None`` (no limit) or an int >= 1; ``offset`` is an int >= 0.

    Example::

        options = (
            QueryOptions()
            .with_specification(spec, registry=registry)
            .with_ordering("-created_at")
            .with_pagination(limit=20, offset=0)
        )
    """

    specification: Specification | None = None
    ordering: tuple[OrderBy, ...] = ()
    limit: int | None = None
    offset: int = 0
    registry: OperatorRegistry | None = dc_field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.specification is not None and not isinstance(self.specification, Specification):
            raise TypeError(
                "specification must be a Specification or None, "
                f"got {type(self.specification).__name__}"
            )
        ordering: object = self.ordering
        if isinstance(ordering, str) or not isinstance(ordering, Iterable):
            raise TypeError(
                f"ordering must be a sequence of OrderBy or str, got {type(ordering).__name__}"
            )
        object.__setattr__(self, "ordering", _ordering(ordering))
        if self.limit is not None:
            _check_count("limit", self.limit, 1)
        _check_count("offset", self.offset, 0)
        if self.registry is not None and not isinstance(self.registry, OperatorRegistry):
            raise TypeError(
                f"registry must be an OperatorRegistry, got {type(self.registry).__name__}"
            )

    @classmethod
    def of(cls, options: QueryOptions | Specification | None) -> QueryOptions:
        """Normalise what a repository's ``search`` accepts to ``QueryOptions``.

        ``None`` means everything; a bare specification means that filter, no
        ordering and no page.

        Raises:
            TypeError: ``options`` is something else.
        """
        if options is None:
            return cls()
        if isinstance(options, Specification):
            return cls().with_specification(options)
        if isinstance(options, QueryOptions):
            return options
        raise TypeError(
            f"search() takes QueryOptions, a Specification or None, got {type(options).__name__}"
        )

    def with_specification(
        self,
        spec: Specification | Mapping[str, Any] | None,
        registry: OperatorRegistry | None = None,
    ) -> QueryOptions:
        """Replace the specification; a dict is parsed with ``from_dict``.

        ``registry`` (kept as ``.registry``; the current one when ``None``) resolves the
        operators of a dict. ``None`` removes the specification.
        """
        registry = self.registry if registry is None else registry
        if isinstance(spec, Mapping):
            spec = from_dict(spec, registry=registry)
        elif spec is not None and not isinstance(spec, Specification):
            raise TypeError(f"expected a Specification, a dict or None, got {type(spec).__name__}")
        return replace(self, specification=spec, registry=registry)

    def with_ordering(self, *fields: str | OrderBy | Iterable[str | OrderBy]) -> QueryOptions:
        """Replace the ordering: ``"-created_at"`` descending, ``"+name"``/``"name"`` ascending.

        Takes fields as arguments or a single list; no argument removes the ordering.
        """
        items: Iterable[Any] = fields
        if len(fields) == 1 and isinstance(fields[0], list | tuple):
            items = fields[0]
        return replace(self, ordering=_ordering(items))

    def with_pagination(self, limit: int | None = None, offset: int = 0) -> QueryOptions:
        """Replace limit (``None`` or >= 1) and offset (>= 0)."""
        return replace(self, limit=limit, offset=offset)

    def apply(self, items: Iterable[T]) -> list[T]:
        """Filter, sort and paginate ``items`` in memory, as the SQL query would.

        Keeps the items the specification is satisfied by, sorts them stably by
        ``ordering`` with NULLs (``None``) as PostgreSQL places them (last when
        ascending, first when descending), then skips ``offset`` and keeps ``limit``.
        Values compare with Python's ordering (strings by code point, unlike a
        database collation).
        """
        spec = self.specification
        rows = [item for item in items if spec is None or spec.is_satisfied_by(item)]
        for order in reversed(self.ordering):
            rows = _sorted(rows, order)
        end = None if self.limit is None else self.offset + self.limit
        return rows[self.offset : end]


def _sorted(rows: list[T], order: OrderBy) -> list[T]:
    def key(item: T) -> tuple[int, Any]:
        value = resolve_field(item, order.field)
        # (1, 0) sorts after every (0, value): NULLS LAST ascending, and reversed for
        # descending it comes first, which is PostgreSQL's NULLS FIRST for DESC.
        return (1, 0) if value is None else (0, value)

    try:
        return sorted(rows, key=key, reverse=order.descending)
    except TypeError as exc:
        raise SpecificationEvaluationError(
            f"cannot sort by {order.field!r}: its values cannot be compared ({exc})",
            field=order.field,
            operator=None,
        ) from exc
