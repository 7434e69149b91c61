"""Domain classes and models shared by the persistence tests (the specification's shapes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cqrs_ddd_core import AggregateRoot
from cqrs_ddd_persistence_sqlalchemy.core.models import Base


class Order(AggregateRoot[str]):
    id: str
    customer_id: str
    total: float
    status: str = "pending"


class Customer(AggregateRoot[str]):
    id: str
    name: str
    email: str


class Counter(AggregateRoot[str]):
    id: str
    value: int = 0


class CustomerModel(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), unique=True)


class OrderModel(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String, ForeignKey("customers.id"))
    total: Mapped[float] = mapped_column(Numeric(10, 2))
    status: Mapped[str] = mapped_column(String(50))


class CounterModel(Base):
    __tablename__ = "counters"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


# -- nested objects and relationships ---------------------------------------------------


class Address(BaseModel):
    street: str
    city: str


class Profile(AggregateRoot[str]):
    """Nested value objects stored in JSON columns."""

    id: str
    name: str
    addresses: list[Address]
    primary: Address | None = None
    tags: list[str]
    extra: dict[str, Any]


class ProfileModel(Base):
    __tablename__ = "profiles"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    addresses: Mapped[list[Any]]
    primary: Mapped[dict[str, Any] | None]
    tags: Mapped[list[Any]]
    extra: Mapped[dict[str, Any]]


class Line(BaseModel):
    id: int
    sku: str
    quantity: int


class Basket(AggregateRoot[str]):
    """An aggregate whose children live in their own table."""

    id: str
    owner: str
    lines: list[Line]


class BasketModel(Base):
    __tablename__ = "baskets"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    lines: Mapped[list[LineModel]] = relationship(
        cascade="all, delete-orphan", order_by="LineModel.id"
    )


class LineModel(Base):
    __tablename__ = "basket_lines"
    __versioned__ = False
    __timestamps__ = False

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    basket_id: Mapped[str] = mapped_column(ForeignKey("baskets.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(50))
    quantity: Mapped[int]
