"""The result of a repository search: awaitable to a list, or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Generic, TypeVar

__all__ = ["SearchResult"]

T = TypeVar("T")


class SearchResult(Generic[T]):
    """A lazily executed search.

    ``await result`` runs the query and returns every matching entity as a list;
    ``result.stream(batch_size=...)`` returns an async iterator that fetches rows in
    batches, so memory stays bounded however many rows match. Nothing runs until one
    of the two is used; each use runs the query anew.
    """

    __slots__ = ("_fetch", "_stream")

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[T]]],
        stream: Callable[[int], AsyncIterator[T]],
    ) -> None:
        self._fetch = fetch
        self._stream = stream

    def __await__(self) -> Generator[object, None, list[T]]:
        return self._fetch().__await__()

    def stream(self, batch_size: int = 100) -> AsyncIterator[T]:
        """Iterate over the matching entities, fetching ``batch_size`` rows at a time."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        return self._stream(batch_size)
