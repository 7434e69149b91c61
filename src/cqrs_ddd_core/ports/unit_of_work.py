"""The unit of work port: one transaction per command, with hooks and callbacks.

:class:`UnitOfWork` implements the lifecycle every adapter shares (enter once,
commit any number of times, roll back on error, close on exit) and the order in
which hooks and callbacks run; adapters supply the four primitive operations.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Self

from cqrs_ddd_core.exceptions import PostCommitError, UnitOfWorkError

__all__ = ["OnCommitCallback", "UnitOfWork", "UnitOfWorkHooks", "UnitOfWorkState"]

logger = logging.getLogger(__name__)

OnCommitCallback = Callable[[], Awaitable[None] | None]


class UnitOfWorkHooks:
    """Observers of a unit of work's transactions. Every method is a no-op by default.

    Hooks run in the order they were given. A ``pre_commit`` that raises aborts the
    commit (the transaction is rolled back and the error propagates). ``post_commit``
    runs after the data is durable: if it raises, the other hooks and callbacks still
    run and a :class:`PostCommitError` reports every failure afterwards.
    """

    async def pre_commit(self, uow: UnitOfWork) -> None:
        """Run before the transaction commits."""

    async def post_commit(self, uow: UnitOfWork) -> None:
        """Run after the transaction committed."""

    async def pre_rollback(self, uow: UnitOfWork) -> None:
        """Run before the transaction rolls back."""

    async def post_rollback(self, uow: UnitOfWork) -> None:
        """Run after the transaction rolled back."""


class UnitOfWorkState(enum.Enum):
    """Where a unit of work is in its lifecycle."""

    NEW = "new"
    ACTIVE = "active"
    CLOSED = "closed"


class UnitOfWork(ABC):
    """A transaction boundary: use it as ``async with uow:`` once per command.

    * On a clean exit of the ``async with`` block, work still pending is committed;
      on an exception it is rolled back and the exception propagates unchanged.
    * :meth:`commit` may be called several times; the unit of work stays usable.
      If the commit fails, the transaction is rolled back, the error propagates and
      the unit of work is usable again.
    * ``pre_commit`` hooks → commit → ``post_commit`` hooks → ``on_commit``
      callbacks; ``pre_rollback`` hooks → rollback → ``post_rollback`` hooks.
    * Failures after a successful commit never undo it: every post-commit hook and
      callback runs, then :class:`PostCommitError` lists the failures.
    """

    def __init__(self, *, hooks: UnitOfWorkHooks | Sequence[UnitOfWorkHooks] | None = None) -> None:
        if hooks is None:
            self._hooks: tuple[UnitOfWorkHooks, ...] = ()
        elif isinstance(hooks, UnitOfWorkHooks):
            self._hooks = (hooks,)
        else:
            self._hooks = tuple(hooks)
            for hook in self._hooks:
                if not isinstance(hook, UnitOfWorkHooks):
                    raise TypeError(
                        f"hooks must be UnitOfWorkHooks instances, got {type(hook).__name__}"
                    )
        self._state = UnitOfWorkState.NEW
        self._callbacks: list[OnCommitCallback] = []

    # -- primitives supplied by adapters -------------------------------------------

    @abstractmethod
    async def _begin(self) -> None:
        """Acquire what the unit of work needs (called on ``__aenter__``)."""

    @abstractmethod
    async def _commit(self) -> None:
        """Commit the current transaction."""

    @abstractmethod
    async def _rollback(self) -> None:
        """Roll back the current transaction."""

    @abstractmethod
    async def _close(self) -> None:
        """Release what ``_begin`` acquired (called on ``__aexit__``)."""

    def _has_pending_work(self) -> bool:
        """Whether a clean exit must commit. Adapters refine this."""
        return True

    # -- lifecycle -------------------------------------------------------------------

    @property
    def state(self) -> UnitOfWorkState:
        """The lifecycle state: new, active (entered) or closed."""
        return self._state

    @property
    def hooks(self) -> tuple[UnitOfWorkHooks, ...]:
        """The hooks, in the order they run."""
        return self._hooks

    def ensure_active(self) -> None:
        """Raise :class:`UnitOfWorkError` unless the unit of work has been entered."""
        if self._state is UnitOfWorkState.NEW:
            raise UnitOfWorkError(
                f"{type(self).__name__} has not been entered: use it as `async with uow:`"
            )
        if self._state is UnitOfWorkState.CLOSED:
            raise UnitOfWorkError(
                f"{type(self).__name__} is closed: create a new unit of work for new work"
            )

    async def __aenter__(self) -> Self:
        if self._state is not UnitOfWorkState.NEW:
            raise UnitOfWorkError(
                f"Cannot enter a {type(self).__name__} more than once; create one per command"
            )
        await self._begin()
        self._state = UnitOfWorkState.ACTIVE
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                if self._has_pending_work() or self._callbacks:
                    await self.commit()
            else:
                await self._rollback_after_error(exc)
        finally:
            self._state = UnitOfWorkState.CLOSED
            self._callbacks.clear()
            # Shielded so that a cancelled task still returns its connection.
            await asyncio.shield(self._close())

    async def _rollback_after_error(self, error: BaseException) -> None:
        # The caller's exception must propagate unchanged: a failure while rolling
        # back is logged at error level and attached to it as a note.
        try:
            await asyncio.shield(self.rollback())
        except Exception as rollback_error:
            logger.error("rollback after %r failed", error, exc_info=rollback_error)
            error.add_note(f"rollback also failed: {rollback_error!r}")

    def on_commit(self, callback: OnCommitCallback) -> None:
        """Run ``callback`` (sync or async, no arguments) after the next successful commit.

        Callbacks are discarded by a rollback.
        """
        self.ensure_active()
        self._callbacks.append(callback)

    async def commit(self) -> None:
        """Commit the transaction, running hooks and callbacks around it.

        Raises:
            UnitOfWorkError: the unit of work is not active.
            PostCommitError: the commit succeeded but hooks or callbacks after it failed.
        """
        self.ensure_active()
        try:
            for hook in self._hooks:
                await hook.pre_commit(self)
            await self._commit()
        except Exception:
            await asyncio.shield(self._rollback_quietly())
            raise
        callbacks, self._callbacks = self._callbacks, []
        errors: list[Exception] = []
        for hook in self._hooks:
            try:
                await hook.post_commit(self)
            except Exception as exc:  # noqa: BLE001 - every hook runs; failures are re-raised below
                errors.append(exc)
        for callback in callbacks:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # noqa: BLE001 - every hook runs; failures are re-raised below
                errors.append(exc)
        if errors:
            raise PostCommitError(errors) from errors[0]

    async def rollback(self) -> None:
        """Roll back the transaction, running the rollback hooks around it.

        The rollback happens even if a ``pre_rollback`` hook raises; the first hook
        error is raised afterwards.
        """
        self.ensure_active()
        self._callbacks.clear()
        errors: list[Exception] = []
        for hook in self._hooks:
            try:
                await hook.pre_rollback(self)
            except Exception as exc:  # noqa: BLE001 - every hook runs; failures are re-raised below
                errors.append(exc)
        await self._rollback()
        for hook in self._hooks:
            try:
                await hook.post_rollback(self)
            except Exception as exc:  # noqa: BLE001 - every hook runs; failures are re-raised below
                errors.append(exc)
        if errors:
            raise errors[0]

    async def _rollback_quietly(self) -> None:
        # Used when a commit failed: the commit's error is the one to report.
        try:
            await self.rollback()
        except Exception:
            logger.exception("rollback after a failed commit failed")
