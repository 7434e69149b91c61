"""Command line: ``python -m cqrs_ddd_persistence_sqlalchemy {demo,relay} ...``.

Also installed as the console commands ``cqrs-ddd`` and ``cqrs-ddd-relay``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta

__all__ = ["main", "relay_main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cqrs_ddd_persistence_sqlalchemy",
        description="Tools of cqrs-ddd-persistence-sqlalchemy.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a tour of the library on a database")
    demo.add_argument(
        "--db",
        default=None,
        help=(
            "database URL, e.g. postgresql+asyncpg://user:password@host/db, of a database "
            "used by nothing else (default: the SQLite file cqrs_ddd_demo.db in this directory)"
        ),
    )
    _relay_arguments(commands.add_parser("relay", help="publish the outbox to a broker"))
    return parser


def _relay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="database URL, e.g. postgresql+asyncpg://...")
    parser.add_argument(
        "--publisher",
        default="console",
        help="'console', 'rabbitmq' or module:attribute of a publisher (default: console)",
    )
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lease", type=float, default=30.0, help="claim lease in seconds")
    parser.add_argument("--max-attempts", type=int, default=5)
    parser.add_argument("--poll-interval", type=float, default=0.2, help="seconds")
    parser.add_argument("--max-poll-interval", type=float, default=5.0, help="seconds")
    parser.add_argument(
        "--create-tables", action="store_true", help="create the library's tables first"
    )
    parser.add_argument("--log-level", default="INFO")


async def _run_relay(args: argparse.Namespace) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from cqrs_ddd_core.ports.outbox import RetryPolicy
    from cqrs_ddd_persistence_sqlalchemy.core.models import Base
    from cqrs_ddd_persistence_sqlalchemy.core.relay import OutboxRelay
    from cqrs_ddd_persistence_sqlalchemy.publishers import load_publisher

    publisher = load_publisher(args.publisher)
    engine = create_async_engine(args.db)
    try:
        if args.create_tables:
            tables = [Base.metadata.tables["outbox"], Base.metadata.tables["events"]]
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all, tables=tables)
        relay = OutboxRelay(
            engine,
            publisher,
            batch_size=args.batch_size,
            lease=timedelta(seconds=args.lease),
            retry=RetryPolicy(max_attempts=args.max_attempts),
            poll_interval=args.poll_interval,
            max_poll_interval=args.max_poll_interval,
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, relay.stop)
        await relay.run()
    finally:
        close = getattr(publisher, "close", None)
        if close is not None:
            await close()
        await engine.dispose()


def _demo(url: str | None) -> int:
    from sqlalchemy.exc import ArgumentError

    from cqrs_ddd_persistence_sqlalchemy.demo import DEFAULT_URL, DemoRefusedError, run_demo

    try:
        asyncio.run(run_demo(url or DEFAULT_URL))
    except (DemoRefusedError, ArgumentError, OSError) as exc:
        # A database the demo must not use, a malformed URL, or a server out of reach.
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return _demo(args.db)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_run_relay(args))
    return 0


def relay_main(argv: Sequence[str] | None = None) -> int:
    """The ``cqrs-ddd-relay`` command: ``relay`` without the subcommand word."""
    return main(["relay", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
