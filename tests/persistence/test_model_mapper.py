"""ModelMapper: names, JSON columns, coercion, relationships, transformers and errors."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

import pytest
from sample_domain import (
    Address,
    Basket,
    BasketModel,
    Line,
    Order,
    OrderModel,
    Profile,
    ProfileModel,
)
from sqlalchemy import String, event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedAsDataclass, mapped_column, validates

from cqrs_ddd_core import AggregateRoot
from cqrs_ddd_persistence_sqlalchemy.core import (
    Base,
    FieldTransformer,
    ModelMapper,
    SQLAlchemyRepository,
    SQLAlchemyUnitOfWork,
)
from cqrs_ddd_persistence_sqlalchemy.exceptions import MappingError, SerializationError


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Paint(AggregateRoot[str]):
    id: str
    colour: Colour
    label: str
    mixed_at: datetime | None = None


class PaintModel(Base):
    __tablename__ = "paints"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    colour: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(100))
    mixed_at: Mapped[datetime | None]
    code: Mapped[str] = mapped_column(String(20))  # required, not on the entity


def test_fields_map_by_name_both_ways() -> None:
    mapper = ModelMapper(entity_cls=Order, model_cls=OrderModel)
    order = Order(id="o-1", customer_id="c-1", total=9.5, status="pending")
    model = mapper.to_model(order)
    assert isinstance(model, OrderModel)
    assert (model.id, model.customer_id, model.total, model.status) == (
        "o-1",
        "c-1",
        9.5,
        "pending",
    )
    assert model.version is None  # the repository decides the stored version
    back = mapper.from_model(model)
    assert back == order


def test_a_numeric_column_fills_a_float_field() -> None:
    mapper = ModelMapper(Order, OrderModel)
    model = OrderModel(id="o-1", customer_id="c", total=Decimal("99.99"), status="x", version=3)
    order = mapper.from_model(model)
    assert order.total == 99.99
    assert isinstance(order.total, float)
    assert order.version == 3


def test_nested_models_go_to_json_and_come_back_validated() -> None:
    mapper = ModelMapper(Profile, ProfileModel)
    profile = Profile(
        id="p-1",
        name="Ann",
        addresses=[Address(street="1 Main St", city="Springfield")],
        primary=Address(street="2 Side St", city="Shelbyville"),
        extra={"since": datetime(2024, 5, 1, tzinfo=UTC), "score": Decimal("1.5")},
    )
    model = mapper.to_model(profile)
    assert model.addresses == [{"street": "1 Main St", "city": "Springfield"}]
    assert model.primary == {"street": "2 Side St", "city": "Shelbyville"}
    assert model.extra == {"since": "2024-05-01T00:00:00Z", "score": "1.5"}
    back = mapper.from_model(model)
    assert back.addresses == profile.addresses
    assert back.primary == profile.primary


def test_the_specification_customer_example() -> None:
    # Section 5: collections start empty, so Customer(...) without addresses is valid.
    customer = Profile(id="c1", name="John")
    mapper = ModelMapper(entity_cls=Profile, model_cls=ProfileModel, relationship_depth=1)
    model = mapper.to_model(customer)
    assert (model.id, model.name, model.addresses) == ("c1", "John", [])
    entity = mapper.from_model(ProfileModel(id="c2", name="Jane"))
    assert (entity.id, entity.name, entity.addresses) == ("c2", "Jane", [])


def test_custom_transformers_apply_per_field() -> None:
    class Tagged(AggregateRoot[str]):
        id: str
        label: str

    mapper = ModelMapper(
        Tagged,
        PaintModel,
        transformers={"label": FieldTransformer(to_model=str.upper, from_model=str.lower)},
    )
    model = mapper.to_model(Tagged(id="t", label="Shiny"))
    assert model.label == "SHINY"
    assert mapper.from_model(model).label == "shiny"
    pair = ModelMapper(Tagged, PaintModel, transformers={"label": (str.title, None)})
    assert pair.to_model(Tagged(id="t", label="matt finish")).label == "Matt Finish"


def test_enums_are_stored_by_value() -> None:
    mapper = ModelMapper(Paint, PaintModel)
    model = mapper.to_model(Paint(id="p", colour=Colour.RED, label="l"))
    assert model.colour == "red"
    model.code = "c"
    assert mapper.from_model(model).colour is Colour.RED


def test_a_model_missing_a_required_entity_field_names_it() -> None:
    class Wide(AggregateRoot[str]):
        id: str
        label: str
        weight: float

    mapper = ModelMapper(Wide, PaintModel)
    with pytest.raises(
        MappingError, match=r"Wide from PaintModel: weight: Field required"
    ) as caught:
        mapper.from_model(PaintModel(id="p", label="x", colour="red", code="c"))
    assert caught.value.field == "weight"


def test_a_value_of_the_wrong_type_names_the_field() -> None:
    mapper = ModelMapper(Order, OrderModel)
    with pytest.raises(MappingError, match="total"):
        mapper.from_model(OrderModel(id="o", customer_id="c", total="lots", status="s"))


def test_an_entity_missing_a_required_column_names_it() -> None:
    mapper = ModelMapper(Paint, PaintModel)
    model = mapper.to_model(Paint(id="p", colour=Colour.BLUE, label="l"))
    with pytest.raises(MappingError, match=r"PaintModel\.code is required") as caught:
        mapper.check_required(model)
    assert (caught.value.field, caught.value.source, caught.value.target) == (
        "code",
        Paint,
        PaintModel,
    )


def test_unknown_names_in_the_configuration_are_refused() -> None:
    with pytest.raises(MappingError, match="Order has no field 'nope'"):
        ModelMapper(Order, OrderModel, transformers={"nope": (str, str)})
    with pytest.raises(TypeError, match="pydantic model"):
        ModelMapper(dict, OrderModel)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="mapped SQLAlchemy class"):
        ModelMapper(Order, dict)
    with pytest.raises(ValueError, match="relationship_depth"):
        ModelMapper(Order, OrderModel, relationship_depth=-1)


def test_mappers_are_cached_per_class_pair() -> None:
    assert ModelMapper.for_classes(Order, OrderModel) is ModelMapper.for_classes(Order, OrderModel)


def test_an_unencodable_json_value_is_refused_before_anything_is_written() -> None:
    class Opaque:
        pass

    mapper = ModelMapper(Profile, ProfileModel)
    with pytest.raises(SerializationError, match="cannot be encoded as JSON"):
        mapper.to_model(Profile(id="p", name="n", extra={"thing": Opaque()}))


async def test_nan_and_infinities_in_a_json_column_are_stored_as_null(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    # As pydantic's model_dump_json() writes them; PostgreSQL refuses NaN in jsonb.
    repo = SQLAlchemyRepository(Profile, ProfileModel)
    odd = {"ratio": [1.5, float("nan")], "top": float("inf"), "low": float("-inf")}
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await repo.add(Profile(id="p", name="n", extra=odd), uow=uow)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        loaded = await repo.get("p", uow=uow)
    assert loaded is not None
    assert loaded.extra == {"ratio": [1.5, None], "top": None, "low": None}


async def test_relationships_are_loaded_and_saved_to_the_depth_asked(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    repo = SQLAlchemyRepository(Basket, BasketModel, relationship_depth=1)
    basket = Basket(
        id="b-1",
        owner="ann",
        lines=[Line(id=1, sku="A", quantity=2), Line(id=2, sku="B", quantity=1)],
    )
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await repo.add(basket, uow=uow)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        loaded = await repo.get("b-1", uow=uow)
        assert loaded is not None
        assert loaded.lines == basket.lines
        loaded.lines = [Line(id=1, sku="A", quantity=5), Line(id=3, sku="C", quantity=1)]
        await repo.add(loaded, uow=uow)
        assert loaded.version == 2
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        again = await repo.get("b-1", uow=uow)
        assert again is not None
        assert [(line.id, line.sku, line.quantity) for line in again.lines] == [
            (1, "A", 5),
            (3, "C", 1),
        ]
        assert await repo.delete("b-1", uow=uow) is True
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        assert await repo.get("b-1", uow=uow) is None

    shallow = SQLAlchemyRepository(Basket, BasketModel)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await repo.add(Basket(id="b-2", owner="bo", lines=[Line(id=9, sku="Z", quantity=1)]), uow)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        # Depth 0: the relationship is not loaded and the field keeps its default.
        unloaded = await shallow.get("b-2", uow=uow)
    assert unloaded is not None
    assert unloaded.lines == []


async def test_a_required_column_left_empty_is_refused_before_sql(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    repo = SQLAlchemyRepository(Paint, PaintModel)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        with pytest.raises(MappingError, match="code"):
            await repo.add(Paint(id="p", colour=Colour.RED, label="l"), uow=uow)
        assert not uow.session.new


# -- construction: the model's own behaviour is kept -----------------------------------


class Label(AggregateRoot[str]):
    id: str
    text: str


class PlainLabelModel(Base):
    __tablename__ = "plain_labels"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    text: Mapped[str] = mapped_column(String(50))


class ValidatedLabelModel(Base):
    __tablename__ = "validated_labels"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    text: Mapped[str] = mapped_column(String(50))

    @validates("text")
    def _upper(self, _key: str, value: str) -> str:
        return value.upper()


class ListenedLabelModel(Base):
    __tablename__ = "listened_labels"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    text: Mapped[str] = mapped_column(String(50))


@event.listens_for(ListenedLabelModel.text, "set", retval=True)
def _strip_text(_target: object, value: str, _old: object, _initiator: object) -> str:
    return value.strip()


class DataclassBase(MappedAsDataclass, DeclarativeBase):
    pass


class DataclassLabelModel(DataclassBase):
    __tablename__ = "dataclass_labels"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    text: Mapped[str] = mapped_column(String(50))
    note: Mapped[str] = mapped_column(String(50), default="from the dataclass")


def test_a_plain_model_is_built_without_attribute_events_yet_inserts_its_values() -> None:
    mapper = ModelMapper(Order, OrderModel)
    model = mapper.to_model(Order(id="o-9", customer_id="c", total=1.5, status="new"))
    assert inspect(model).transient
    assert {k: v for k, v in vars(model).items() if not k.startswith("_")} == {
        "id": "o-9",
        "customer_id": "c",
        "total": 1.5,
        "status": "new",
    }


def test_validators_run_when_the_model_declares_them() -> None:
    model = ModelMapper(Label, ValidatedLabelModel).to_model(Label(id="l", text="abc"))
    assert model.text == "ABC"


def test_attribute_set_listeners_run_when_registered() -> None:
    model = ModelMapper(Label, ListenedLabelModel).to_model(Label(id="l", text="  abc "))
    assert model.text == "abc"


def test_a_dataclass_model_is_built_by_its_own_constructor() -> None:
    model = ModelMapper(Label, DataclassLabelModel).to_model(Label(id="l", text="abc"))
    assert model.note == "from the dataclass"


async def test_values_of_a_model_built_without_events_reach_the_database(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    repo = SQLAlchemyRepository(Label, PlainLabelModel)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await repo.add(Label(id="l-1", text="stored"), uow)
        await repo.add_all([Label(id="l-2", text="also"), Label(id="l-3", text="too")], uow)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        rows = (
            await uow.session.execute(
                select(PlainLabelModel.id, PlainLabelModel.text, PlainLabelModel.version).order_by(
                    PlainLabelModel.id
                )
            )
        ).all()
        loaded = await repo.get("l-1", uow)
    assert [tuple(row) for row in rows] == [
        ("l-1", "stored", 1),
        ("l-2", "also", 1),
        ("l-3", "too", 1),
    ]
    assert loaded is not None
    assert (loaded.id, loaded.text, loaded.version) == ("l-1", "stored", 1)
