"""Backends for the contract tests: in-memory, and SQLAlchemy on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from contract_support import Backend
from sample_domain import Counter, CounterModel, Customer, CustomerModel, Order, OrderModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cqrs_ddd_core.adapters import InMemoryRepository, InMemoryStore, InMemoryUnitOfWork
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyRepository, SQLAlchemyUnitOfWork


@pytest.fixture
def sql_backend(session_factory: async_sessionmaker[AsyncSession]) -> Backend:
    def new_uow(hooks: Any = None) -> SQLAlchemyUnitOfWork:
        return SQLAlchemyUnitOfWork(session_factory=session_factory, hooks=hooks)

    return Backend(
        new_uow=new_uow,
        orders=SQLAlchemyRepository(entity_cls=Order, db_model_cls=OrderModel),
        customers=SQLAlchemyRepository(entity_cls=Customer, db_model_cls=CustomerModel),
        counters=SQLAlchemyRepository(entity_cls=Counter, db_model_cls=CounterModel),
    )


@pytest.fixture
def memory_backend() -> Backend:
    store = InMemoryStore()

    def new_uow(hooks: Any = None) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(store, hooks=hooks)

    return Backend(
        new_uow=new_uow,
        orders=InMemoryRepository(Order),
        customers=InMemoryRepository(Customer),
        counters=InMemoryRepository(Counter),
    )
