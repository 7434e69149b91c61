"""Conversion between domain entities (pydantic models) and SQLAlchemy models."""

from __future__ import annotations

import enum
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, Integer, inspect
from sqlalchemy.orm import Mapper, configure_mappers, selectinload
from sqlalchemy.orm.strategy_options import _AbstractLoad
from sqlalchemy.types import JSON, Enum, TypeDecorator, TypeEngine, Uuid

from cqrs_ddd_persistence_sqlalchemy.core.types import to_json_value
from cqrs_ddd_persistence_sqlalchemy.exceptions import MappingError

__all__ = ["FieldTransformer", "ModelMapper"]

E = TypeVar("E", bound=BaseModel)
M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class FieldTransformer:
    """Custom conversion of one field: entity value → column value, and back."""

    to_model: Callable[[Any], Any] | None = None
    from_model: Callable[[Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class _ColumnField:
    field: str  # entity field name
    attr: str  # model attribute key
    to_model: Callable[[Any], Any] | None
    from_model: Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _RelationField:
    field: str
    attr: str
    many: bool
    mapper: ModelMapper[Any, Any]


def _is_json(type_: TypeEngine[Any]) -> bool:
    if isinstance(type_, TypeDecorator):
        return _is_json(type_.impl_instance)
    return isinstance(type_, JSON)


def _may_hold(annotation: Any, kinds: tuple[type, ...]) -> bool:
    """Whether a field annotated ``annotation`` can hold an instance of ``kinds``."""
    if isinstance(annotation, type):
        return issubclass(annotation, kinds)
    args = typing.get_args(annotation)
    if args:
        return any(_may_hold(arg, kinds) for arg in args)
    return annotation is Any or isinstance(annotation, typing.TypeVar)


def _scalar_to_column(type_: TypeEngine[Any], annotation: Any) -> Callable[[Any], Any] | None:
    """A converter for values a column of ``type_`` would not take as they are.

    Converters are attached only where needed, so plain fields (str, int, float,
    datetime) cost nothing per row.
    """
    if _is_json(type_):
        # Converted here rather than when bound, so an unencodable value fails in
        # add(), before anything is sent.
        return to_json_value
    if isinstance(type_, Enum | Uuid) or (
        isinstance(type_, TypeDecorator) and isinstance(type_.impl_instance, Enum | Uuid)
    ):
        return None
    if not _may_hold(annotation, (enum.Enum, uuid.UUID)):
        return None

    def convert(value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, uuid.UUID):
            return str(value)
        return value

    return convert


def _autoincrements(column: Column[Any]) -> bool:
    if column.autoincrement is True:
        return True
    return (
        column.autoincrement == "auto"
        and isinstance(column.type, Integer)
        and len(column.table.primary_key.columns) == 1
    )


def _nested_entity_type(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic class inside ``X``, ``X | None``, ``list[X]`` and friends."""
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset, typing.Sequence):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        inner, _ = _nested_entity_type(args[0]) if args else (None, False)
        return inner, True
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _nested_entity_type(arg)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


class ModelMapper(Generic[E, M]):
    """Maps a pydantic entity class to a SQLAlchemy model class and back.

    Fields are matched by name (``field_map`` renames: entity field → model
    attribute). JSON columns take nested pydantic models and lists of them; values
    read back are validated by pydantic, so a ``Numeric`` column fills a ``float``
    field. Relationships whose name matches an entity field are mapped to nested
    entities down to ``relationship_depth`` levels. ``transformers`` overrides the
    conversion of single fields. The mapping plan is computed once per mapper;
    :meth:`for_classes` caches mappers per class pair.

    Raises:
        MappingError: a field of ``field_map`` or ``transformers`` does not exist.
    """

    _cache: ClassVar[dict[tuple[type[Any], type[Any], int], ModelMapper[Any, Any]]] = {}

    def __init__(
        self,
        entity_cls: type[E],
        model_cls: type[M],
        relationship_depth: int = 0,
        *,
        field_map: Mapping[str, str] | None = None,
        transformers: Mapping[str, FieldTransformer | tuple[Any, Any]] | None = None,
    ) -> None:
        if not (isinstance(entity_cls, type) and issubclass(entity_cls, BaseModel)):
            raise TypeError(f"entity_cls must be a pydantic model class, got {entity_cls!r}")
        try:
            mapper = cast("Mapper[Any]", inspect(model_cls))
        except Exception as exc:
            raise TypeError(
                f"model_cls must be a mapped SQLAlchemy class, got {model_cls!r}"
            ) from exc
        if relationship_depth < 0:
            raise ValueError("relationship_depth must be >= 0")
        self.entity_cls = entity_cls
        self.model_cls = model_cls
        self.relationship_depth = relationship_depth
        self.sa_mapper = mapper
        self._class_manager = mapper.class_manager
        self._fill_dict: bool | None = None
        names = f"{entity_cls.__name__} ↔ {model_cls.__name__}"
        field_map = dict(field_map or {})
        custom = {
            name: t if isinstance(t, FieldTransformer) else FieldTransformer(*t)
            for name, t in (transformers or {}).items()
        }
        entity_fields = entity_cls.model_fields
        for name in (*field_map, *custom):
            if name not in entity_fields:
                raise MappingError(
                    f"{names}: {entity_cls.__name__} has no field {name!r}",
                    field=name,
                    source=entity_cls,
                    target=model_cls,
                )
        columns = {prop.key: prop for prop in mapper.column_attrs}
        relationships = {prop.key: prop for prop in mapper.relationships}
        version_col = mapper.version_id_col
        self.version_attr: str | None = None
        if version_col is not None:
            self.version_attr = mapper.get_property_by_column(version_col).key

        self._columns: list[_ColumnField] = []
        self._relations: list[_RelationField] = []
        for name, info in entity_fields.items():
            attr = field_map.get(name, name)
            transformer = custom.get(name)
            if attr in columns:
                column = cast("Column[Any]", columns[attr].columns[0])
                to_model = _scalar_to_column(column.type, info.annotation)
                from_model = None
                if transformer is not None:
                    to_model = transformer.to_model or to_model
                    from_model = transformer.from_model
                self._columns.append(_ColumnField(name, attr, to_model, from_model))
            elif attr in relationships and relationship_depth > 0:
                rel = relationships[attr]
                nested, many = _nested_entity_type(info.annotation)
                if nested is None:
                    raise MappingError(
                        f"{names}: field {name!r} maps to relationship {attr!r} but is not "
                        "annotated with a pydantic model (or a list of them)",
                        field=name,
                        source=entity_cls,
                        target=model_cls,
                    )
                nested_mapper = ModelMapper.for_classes(
                    nested, rel.mapper.class_, relationship_depth - 1
                )
                self._relations.append(
                    _RelationField(name, attr, bool(rel.uselist) and many, nested_mapper)
                )
        # Columns a row cannot be inserted without (checked after to_model ran, so
        # that overridden to_model methods may fill them in).
        self._required_columns: list[str] = []
        for key, prop in columns.items():
            column = cast("Column[Any]", prop.columns[0])
            if (
                column.nullable
                or column.default is not None
                or column.server_default is not None
                or key == self.version_attr
                or (column.primary_key and _autoincrements(column))
            ):
                continue
            self._required_columns.append(key)

    @classmethod
    def for_classes(
        cls, entity_cls: type[E], model_cls: type[M], relationship_depth: int = 0
    ) -> ModelMapper[E, M]:
        """Return the shared mapper for this class pair (built on first use)."""
        key = (entity_cls, model_cls, relationship_depth)
        mapper = cls._cache.get(key)
        if mapper is None:
            mapper = cls._cache[key] = cls(entity_cls, model_cls, relationship_depth)
        return cast("ModelMapper[E, M]", mapper)

    # -- entity → model ---------------------------------------------------------

    def to_model(self, entity: E) -> M:
        """Build a new model instance from ``entity`` (the version column is left unset)."""
        if not isinstance(entity, self.entity_cls):
            raise TypeError(f"expected a {self.entity_cls.__name__}, got {type(entity).__name__}")
        values = self.to_values(entity)
        if self._fill_dict is None:
            self._fill_dict = self._plain_construction()
        if self._fill_dict:
            # The instance is new (transient), so nothing reads attribute history:
            # the INSERT is built from the instance's __dict__. Filling it directly
            # skips one instrumented set per attribute, most of the mapping cost.
            model = cast("M", self._class_manager.new_instance())
            model.__dict__.update(values)
            return model
        return self.model_cls(**values)

    def _plain_construction(self) -> bool:
        """Whether constructing the model does nothing but set attributes.

        True for the declarative constructor with no relationships mapped, no
        ``@validates`` methods and no ``init`` or attribute ``set`` listeners; then
        :meth:`to_model` may fill the instance's ``__dict__`` directly. Checked on
        first use, after the application has registered its listeners.
        """
        configure_mappers()  # what the ORM's own init listener would do first
        mapper = self.sa_mapper
        manager = self._class_manager
        if (
            self._relations
            or mapper.validators
            or mapper.polymorphic_on is not None
            or manager.original_init is not mapper.registry.constructor
            or manager.dispatch.init_failure
        ):
            return False
        for listener in manager.dispatch.init:
            if getattr(listener, "__module__", None) != "sqlalchemy.orm.mapper":
                return False
        return not any(
            manager[col.attr].dispatch.set for col in self._columns if col.attr in manager
        )

    def to_values(self, entity: E) -> dict[str, Any]:
        """The model attribute values of ``entity``, keyed by attribute name."""
        data = entity.__dict__
        values: dict[str, Any] = {}
        for col in self._columns:
            if col.attr == self.version_attr:
                continue
            value = data[col.field]
            if value is not None and col.to_model is not None:
                value = col.to_model(value)
            values[col.attr] = value
        for rel in self._relations:
            value = data[rel.field]
            if value is None:
                values[rel.attr] = [] if rel.many else None
            elif rel.many:
                values[rel.attr] = [rel.mapper.to_model(item) for item in value]
            else:
                values[rel.attr] = rel.mapper.to_model(value)
        return values

    def check_required(self, model: M) -> None:
        """Raise :class:`MappingError` if a NOT NULL column without default is unset."""
        state = model.__dict__
        for key in self._required_columns:
            if state.get(key) is None:
                raise MappingError(
                    f"{self.model_cls.__name__}.{key} is required (NOT NULL, no default) but "
                    f"mapping {self.entity_cls.__name__} left it empty: add the field to "
                    f"{self.entity_cls.__name__}, a field_map entry or a to_model override",
                    field=key,
                    source=self.entity_cls,
                    target=self.model_cls,
                )

    # -- model → entity ---------------------------------------------------------

    def from_model(self, model: M) -> E:
        """Build an entity from a model instance, validating it with pydantic.

        Attributes that are not loaded (never set, deferred or an unloaded
        relationship) are left out, so the entity's defaults apply.

        Raises:
            MappingError: the values do not make a valid entity (a required field is
                missing or a value has the wrong type); names the fields.
        """
        state = model.__dict__
        data: dict[str, Any] = {}
        for col in self._columns:
            if col.attr in state:
                value = state[col.attr]
                if col.from_model is not None and value is not None:
                    value = col.from_model(value)
                data[col.field] = value
        for rel in self._relations:
            if rel.attr in state:
                value = state[rel.attr]
                if value is None:
                    data[rel.field] = None
                elif rel.many:
                    data[rel.field] = [rel.mapper.from_model(item) for item in value]
                else:
                    data[rel.field] = rel.mapper.from_model(value)
        try:
            return self.entity_cls.model_validate(data)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise MappingError(
                f"cannot build {self.entity_cls.__name__} from {self.model_cls.__name__}: "
                f"{problems}",
                field=fields[0] if fields else None,
                source=self.model_cls,
                target=self.entity_cls,
            ) from exc

    # -- loading ----------------------------------------------------------------

    def loader_options(self) -> list[_AbstractLoad]:
        """Eager-loading options for the mapped relationships, to ``relationship_depth``."""
        options: list[_AbstractLoad] = []
        for rel in self._relations:
            attr = getattr(self.model_cls, rel.attr)
            nested = rel.mapper.loader_options()
            load = selectinload(attr)
            options.append(load.options(*nested) if nested else load)
        return options
