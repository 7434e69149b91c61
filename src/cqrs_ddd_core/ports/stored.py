"""Building pydantic records from storage without validating them again."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel

__all__ = ["StoredRecord"]


class StoredRecord(BaseModel):
    """Base of the records adapters read back in bulk (events, outbox messages)."""

    @classmethod
    def from_storage(cls, data: dict[str, Any]) -> Self:
        """Build a record from values read back from storage, without validating them.

        For adapters: ``data`` must hold every field with a value of the right type.
        Skipping validation makes reading a page of records several times faster.
        """
        record = cls.__new__(cls)
        object.__setattr__(record, "__dict__", data)
        object.__setattr__(record, "__pydantic_fields_set__", set(data))
        object.__setattr__(record, "__pydantic_extra__", None)
        object.__setattr__(record, "__pydantic_private__", None)
        return record
