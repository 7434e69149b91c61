"""The SQLAlchemy unit of work: one ``AsyncSession`` transaction per command."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, overload

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from cqrs_ddd_core.exceptions import OptimisticConcurrencyError
from cqrs_ddd_core.ports.unit_of_work import UnitOfWork, UnitOfWorkHooks

__all__ = ["SQLAlchemyUnitOfWork", "SessionFactory", "session_for"]

#: Anything that returns a new session when called, e.g. an ``async_sessionmaker``.
SessionFactory = Callable[[], AsyncSession]


class SQLAlchemyUnitOfWork(UnitOfWork):
    """A unit of work over one ``AsyncSession``.

    Give it either a session factory (the unit of work opens a session on entry
    and closes it on exit) or a session that the caller owns (left open on exit).
    The positional argument may be either::

        async with SQLAlchemyUnitOfWork(session_factory) as uow: ...
        async with SQLAlchemyUnitOfWork(session_factory=session_factory) as uow: ...
        async with SQLAlchemyUnitOfWork(session=session) as uow: ...

    Repositories, the event store and the outbox storage given ``uow=`` use
    :attr:`session`, so everything written through one unit of work commits or rolls
    back together.
    """

    @overload
    def __init__(
        self,
        session_or_factory: AsyncSession | SessionFactory,
        /,
        *,
        hooks: UnitOfWorkHooks | Sequence[UnitOfWorkHooks] | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        /,
        *,
        session: AsyncSession,
        hooks: UnitOfWorkHooks | Sequence[UnitOfWorkHooks] | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        /,
        *,
        session_factory: SessionFactory,
        hooks: UnitOfWorkHooks | Sequence[UnitOfWorkHooks] | None = None,
    ) -> None: ...

    def __init__(
        self,
        session_or_factory: AsyncSession | SessionFactory | None = None,
        /,
        *,
        session: AsyncSession | None = None,
        session_factory: SessionFactory | None = None,
        hooks: UnitOfWorkHooks | Sequence[UnitOfWorkHooks] | None = None,
    ) -> None:
        super().__init__(hooks=hooks)
        given = [x for x in (session_or_factory, session, session_factory) if x is not None]
        if len(given) != 1:
            raise TypeError(
                "SQLAlchemyUnitOfWork needs exactly one of a session (session=) or a "
                f"session factory (session_factory=); got {len(given)}"
            )
        if session_or_factory is not None:
            if isinstance(session_or_factory, AsyncSession):
                session = session_or_factory
            elif callable(session_or_factory):
                session_factory = session_or_factory
            else:
                raise TypeError(
                    "expected an AsyncSession or a session factory, got "
                    f"{type(session_or_factory).__name__}"
                )
        if session is not None and not isinstance(session, AsyncSession):
            raise TypeError(f"session= must be an AsyncSession, got {type(session).__name__}")
        if session_factory is not None and not callable(session_factory):
            raise TypeError(
                f"session_factory= must be callable, got {type(session_factory).__name__}"
            )
        self._session: AsyncSession | None = session
        self._factory = session_factory
        self._owns_session = session is None

    @property
    def session(self) -> AsyncSession:
        """The session of this unit of work.

        Raises:
            UnitOfWorkError: the unit of work has not been entered, or is closed.
        """
        self.ensure_active()
        assert self._session is not None
        return self._session

    @property
    def owns_session(self) -> bool:
        """Whether the unit of work created the session (and closes it on exit)."""
        return self._owns_session

    async def _begin(self) -> None:
        if self._factory is not None:
            session: Any = self._factory()
            if not isinstance(session, AsyncSession):
                raise TypeError(
                    f"the session factory must return an AsyncSession, got {type(session).__name__}"
                )
            self._session = session

    def _has_pending_work(self) -> bool:
        session = self._session
        if session is None:
            return False
        return session.in_transaction() or bool(session.new or session.dirty or session.deleted)

    async def _commit(self) -> None:
        assert self._session is not None
        try:
            await self._session.commit()
        except StaleDataError as exc:
            # The ORM's own version check failed during the final flush (an object
            # changed through the session rather than through a repository).
            raise OptimisticConcurrencyError(str(exc)) from exc

    async def _rollback(self) -> None:
        assert self._session is not None
        await self._session.rollback()

    async def _close(self) -> None:
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()


def session_for(
    uow: UnitOfWork | None, default: AsyncSession | None, owner: object
) -> AsyncSession:
    """The session a store works in: the unit of work's if given, else its own.

    Raises:
        TypeError: ``uow`` is not a ``SQLAlchemyUnitOfWork``, or neither is there.
        UnitOfWorkError: the unit of work is not active.
    """
    if uow is not None:
        if not isinstance(uow, SQLAlchemyUnitOfWork):
            raise TypeError(f"uow must be a SQLAlchemyUnitOfWork, got {type(uow).__name__}")
        return uow.session
    if default is None:
        raise TypeError(
            f"this {type(owner).__name__} has no session: pass uow= or construct it with one"
        )
    return default
