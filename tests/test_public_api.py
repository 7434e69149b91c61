"""Every module's ``__all__`` is sorted, complete and importable; the API.md imports work."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

PACKAGES = ("cqrs_ddd_core", "cqrs_ddd_specifications", "cqrs_ddd_persistence_sqlalchemy")
# Modules that declare tables or run code when imported on purpose.
SKIP = {"cqrs_ddd_persistence_sqlalchemy.__main__"}


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            if info.name not in SKIP:
                names.append(info.name)
    return names


def _public_definitions(module: ModuleType) -> set[str]:
    """Public classes and functions defined in the module itself."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and "[" not in name  # pydantic's parametrized generics register themselves
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module.__name__
    }


@pytest.mark.parametrize("name", _modules())
def test_all_is_sorted_complete_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert list(exported) == sorted(exported, key=lambda n: (not n.isupper(), n)) or list(
        exported
    ) == sorted(exported), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported)
    for public in exported:
        assert hasattr(module, public), f"{name}.__all__ names missing {public}"
    missing = _public_definitions(module) - set(exported)
    assert not missing, f"{name} defines public names not in __all__: {sorted(missing)}"


def test_the_import_paths_of_the_api_contract() -> None:
    from cqrs_ddd_core import AggregateRoot as RootAgain
    from cqrs_ddd_core.domain.aggregate import AggregateRoot
    from cqrs_ddd_core.domain.events import DomainEvent
    from cqrs_ddd_core.ports.event_store import IEventStore, StoredEvent
    from cqrs_ddd_core.ports.outbox import IOutboxStorage
    from cqrs_ddd_core.ports.outbox import OutboxMessage as PortMessage
    from cqrs_ddd_core.ports.repository import IRepository
    from cqrs_ddd_core.ports.search_result import SearchResult
    from cqrs_ddd_core.ports.unit_of_work import UnitOfWork, UnitOfWorkHooks
    from cqrs_ddd_persistence_sqlalchemy.core import (
        Base,
        ModelMapper,
        SQLAlchemyEventStore,
        SQLAlchemyOutboxStorage,
        SQLAlchemyRepository,
        SQLAlchemyUnitOfWork,
    )
    from cqrs_ddd_persistence_sqlalchemy.core.model_mapper import ModelMapper as MapperAgain
    from cqrs_ddd_persistence_sqlalchemy.core.models import Base as BaseAgain
    from cqrs_ddd_persistence_sqlalchemy.core.models import (
        OutboxMessage,
        OutboxMessageModel,
        OutboxStatus,
    )
    from cqrs_ddd_persistence_sqlalchemy.core.uow import SQLAlchemyUnitOfWork as UowAgain
    from cqrs_ddd_persistence_sqlalchemy.exceptions import OptimisticConcurrencyError
    from cqrs_ddd_specifications import QueryOptions, SpecificationBuilder, build_default_registry

    assert RootAgain is AggregateRoot
    assert MapperAgain is ModelMapper
    assert BaseAgain is Base
    assert UowAgain is SQLAlchemyUnitOfWork
    assert OutboxMessageModel is OutboxMessage
    assert OutboxMessage is not PortMessage
    assert OutboxStatus.PENDING == "pending"
    assert issubclass(OptimisticConcurrencyError, Exception)
    for obj in (
        DomainEvent,
        IEventStore,
        StoredEvent,
        IOutboxStorage,
        IRepository,
        SearchResult,
        UnitOfWork,
        UnitOfWorkHooks,
        SQLAlchemyEventStore,
        SQLAlchemyOutboxStorage,
        SQLAlchemyRepository,
        QueryOptions,
        SpecificationBuilder,
        build_default_registry,
    ):
        assert obj is not None


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from cqrs_ddd_persistence_sqlalchemy import *", namespace)
    for name in (
        "SQLAlchemyRepository",
        "SQLAlchemyUnitOfWork",
        "SQLAlchemyEventStore",
        "SQLAlchemyOutboxStorage",
        "ModelMapper",
        "Base",
        "OptimisticConcurrencyError",
    ):
        assert name in namespace


def test_every_library_error_derives_from_one_base() -> None:
    from cqrs_ddd_persistence_sqlalchemy import exceptions

    for name in exceptions.__all__:
        value = getattr(exceptions, name)
        assert issubclass(value, exceptions.PersistenceError), name
