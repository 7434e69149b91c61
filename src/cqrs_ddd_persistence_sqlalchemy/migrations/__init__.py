"""Alembic support: the library's own tables, and hooks for an application's ``env.py``.

The package ships the migration of ``events`` and ``outbox`` as an independent Alembic
branch labelled :data:`BRANCH_LABEL`. An application adds its directory to the
``version_locations`` of its Alembic configuration (:data:`VERSION_LOCATION` in
``alembic.ini``, or :func:`versions_path` when configuring from Python) and runs
``alembic upgrade heads``. Its ``env.py`` keeps ``target_metadata = Base.metadata`` and
passes :func:`include_object` and :func:`render_item` to ``context.configure``. See
``docs/migrations.md``.

Importing this module does not import Alembic, an optional dependency
(``pip install "cqrs-ddd-persistence-sqlalchemy[alembic]"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from sqlalchemy import Table

from cqrs_ddd_persistence_sqlalchemy.core.types import JSONValue, UTCDateTime

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.runtime.environment import NameFilterType
    from sqlalchemy.sql.schema import SchemaItem

__all__ = [
    "BRANCH_LABEL",
    "LIBRARY_TABLES",
    "VERSION_LOCATION",
    "include_object",
    "render_item",
    "versions_path",
]

#: The Alembic branch label of the library's revisions (``alembic upgrade cqrs_ddd@head``).
BRANCH_LABEL: Final = "cqrs_ddd"

#: The directory of the library's revisions as a package resource, for ``alembic.ini``.
VERSION_LOCATION: Final = "cqrs_ddd_persistence_sqlalchemy:migrations/versions"

#: The tables the library's revisions create and own.
LIBRARY_TABLES: Final = frozenset({"events", "outbox"})


def versions_path() -> str:
    """The directory of the library's revisions, as an absolute filesystem path."""
    return str(Path(__file__).resolve().parent / "versions")


def include_object(
    obj: SchemaItem,
    name: str | None,
    type_: NameFilterType,
    reflected: bool,
    compare_to: SchemaItem | None,
) -> bool:
    """Alembic ``include_object`` hook: leave the library's tables to its own revisions.

    With it, autogenerate never proposes to create, alter or drop ``events`` or
    ``outbox`` (of the default schema), their columns or their indexes, whatever state
    the database is in; every other object is compared as usual.
    """
    return not (
        type_ == "table"
        and isinstance(obj, Table)
        and obj.schema is None
        and name in LIBRARY_TABLES
    )


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Alembic ``render_item`` hook: write the library's column types as plain SQLAlchemy.

    Autogenerate would otherwise write ``Mapped[datetime]`` and ``Mapped[dict[...]]``
    columns of models on ``Base`` as ``cqrs_ddd_persistence_sqlalchemy.core.types``
    classes, without importing them. They become the types they create in the
    database: ``UTCDateTime`` is ``sa.DateTime(timezone=True)``, ``JSONValue`` is
    ``sa.JSON()`` with a ``postgresql.JSONB()`` variant. Anything else gets Alembic's
    default rendering (``False``).
    """
    if type_ != "type":
        return False
    prefix = autogen_context.opts.get("sqlalchemy_module_prefix", "sa.") or ""
    if type(obj) is UTCDateTime:
        return f"{prefix}DateTime(timezone=True)"
    if type(obj) is JSONValue:
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return f"{prefix}JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False
