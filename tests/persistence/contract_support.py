"""What the contract tests need from a backend: fresh units of work and repositories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cqrs_ddd_core.ports.repository import IRepository
from cqrs_ddd_core.ports.unit_of_work import UnitOfWork, UnitOfWorkHooks


@dataclass
class Backend:
    """A backend under test: how to open a unit of work and which repositories to use."""

    new_uow: Callable[..., UnitOfWork]
    orders: IRepository[Any, str]
    customers: IRepository[Any, str]
    counters: IRepository[Any, str]

    def uow(self, hooks: UnitOfWorkHooks | list[UnitOfWorkHooks] | None = None) -> UnitOfWork:
        return self.new_uow(hooks=hooks)
